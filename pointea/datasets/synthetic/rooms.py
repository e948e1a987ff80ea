"""Procedural indoor rooms written in the exact S3DIS layout (an offline stand-in).

Each room is a box (floor, ceiling, four walls) with doors and windows cut into the walls,
and furniture placed on the floor: tables, chairs, a sofa, bookcases against walls, a
board on a wall, clutter on tables and on the floor, sometimes a beam under the ceiling
and a column in a corner. Every surface is sampled like a scan: uniform points at
``density`` points per square metre, jittered along the surface normal (``noise``
metres), coloured with a per-class base colour, a per-object tint and per-point noise.
Points that would lie inside a solid object (a wall behind a bookcase) are dropped, as a
scanner would not see them.

The output is ``<root>/Stanford3dDataset_v1.2_Aligned_Version/Area_N/<room>/`` with
``<room>.txt`` (all points) and ``Annotations/<class>_<k>.txt`` (rows ``x y z r g b``,
three decimals and integer colours, like the published files), deterministic from
``seed``. :class:`pointea.datasets.s3dis.S3DIS` reads it like the real data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import InputError
from ...files import atomic_folder
from .._base import fingerprint
from ..s3dis import CLASSES, FOLDER

__all__ = ["generate_room", "write_rooms"]

Rng = np.random.Generator
_MARKER = ".pointea_synthetic_rooms.json"

# base colours (0..255) per class: a room's look, varied per object and point
_BASE = {
    "ceiling": (225, 225, 215),
    "floor": (120, 100, 80),
    "wall": (200, 195, 180),
    "beam": (170, 170, 165),
    "column": (185, 180, 170),
    "window": (150, 190, 220),
    "door": (140, 90, 50),
    "table": (160, 120, 70),
    "chair": (60, 60, 70),
    "sofa": (120, 40, 40),
    "bookcase": (110, 80, 50),
    "board": (240, 240, 240),
    "clutter": (128, 128, 128),
}


@dataclass
class _Object:
    cls: str
    points: np.ndarray  # (n, 3)
    tint: np.ndarray  # (3,) colour of the object
    solid: tuple[np.ndarray, np.ndarray] | None = None  # box that hides other points


def _rect(rng: Rng, origin, u, v, density: float, noise: float) -> np.ndarray:
    """Points on the parallelogram ``origin + s u + t v`` (s, t in [0, 1])."""
    origin, u, v = (np.asarray(a, dtype=np.float64) for a in (origin, u, v))
    area = float(np.linalg.norm(np.cross(u, v)))
    n = rng.poisson(max(area * density, 1.0))
    st = rng.random((n, 2))
    pts = origin + st[:, :1] * u + st[:, 1:] * v
    normal = np.cross(u, v)
    normal = normal / (np.linalg.norm(normal) or 1.0)
    return pts + rng.normal(0.0, noise, (n, 1)) * normal


def _box(rng: Rng, lo, hi, density: float, noise: float, bottom: bool = False) -> np.ndarray:
    """Points on the faces of the box ``[lo, hi]`` (the bottom face only if asked)."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    dx, dy, dz = hi - lo
    ex, ey, ez = np.array([dx, 0, 0]), np.array([0, dy, 0]), np.array([0, 0, dz])
    faces = [
        (lo + ez, ex, ey),
        (lo, ex, ez),
        (lo + ey, ex, ez),
        (lo, ey, ez),
        (lo + ex, ey, ez),
    ]
    if bottom:
        faces.append((lo, ex, ey))
    return np.concatenate([_rect(rng, o, u, v, density, noise) for o, u, v in faces])


def _tint(rng: Rng, cls: str) -> np.ndarray:
    base = np.asarray(_BASE[cls], dtype=np.float64)
    if cls in ("clutter", "sofa", "chair"):  # varied objects: any colour near the base
        base = 0.5 * base + 0.5 * rng.uniform(30, 230, 3)
    return np.clip(base + rng.normal(0, 12, 3), 0, 255)


def _inside(pts: np.ndarray, box: tuple[np.ndarray, np.ndarray], eps: float = 0.01) -> np.ndarray:
    lo, hi = box
    return np.all((pts > lo + eps) & (pts < hi - eps), axis=1)


def generate_room(
    rng: Rng, kind: str = "office", density: float = 150.0, noise: float = 0.005
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """One room as ``[(class, xyz (n, 3) float64, rgb (n, 3) uint8), ...]``, one per object.

    ``kind`` is ``"office"``, ``"conferenceRoom"`` or ``"hallway"`` (long and narrow,
    few objects).
    """
    if kind not in ("office", "conferenceRoom", "hallway"):
        raise InputError(f"kind: expected office, conferenceRoom or hallway, got {kind!r}")
    if density <= 0:
        raise InputError(f"density: must be > 0, got {density}")
    if kind == "hallway":
        w, d = rng.uniform(8, 14), rng.uniform(1.8, 2.6)
    else:
        w, d = rng.uniform(4, 8), rng.uniform(3.5, 6.5)
    h = rng.uniform(2.7, 3.3)
    objs: list[_Object] = []

    def add(cls: str, pts: np.ndarray, solid=None) -> None:
        objs.append(_Object(cls, pts, _tint(rng, cls), solid))

    add("floor", _rect(rng, (0, 0, 0), (w, 0, 0), (0, d, 0), density, noise))
    add("ceiling", _rect(rng, (0, 0, h), (w, 0, 0), (0, d, 0), density, noise))
    # walls: (origin, along, length, inward normal axis) for y=0, y=d, x=0, x=w
    walls = [
        (np.array([0, 0, 0.0]), np.array([1, 0, 0.0]), w),
        (np.array([0, d, 0.0]), np.array([1, 0, 0.0]), w),
        (np.array([0, 0, 0.0]), np.array([0, 1, 0.0]), d),
        (np.array([w, 0, 0.0]), np.array([0, 1, 0.0]), d),
    ]
    holes: list[tuple[np.ndarray, np.ndarray]] = []
    for i, (o, along, length) in enumerate(walls):
        pts = _rect(rng, o, along * length, (0, 0, h), density, noise)
        normal = np.array([0, 1.0, 0]) if along[0] else np.array([1.0, 0, 0])
        if i == 0 or (i == 2 and rng.random() < 0.5):  # a door
            dw, dh = rng.uniform(0.85, 1.0), rng.uniform(2.0, 2.2)
            s = rng.uniform(0.3, max(length - dw - 0.3, 0.31))
            lo = o + along * s - normal * 0.1
            hi = o + along * (s + dw) + normal * 0.1 + np.array([0, 0, dh])
            holes.append((lo, hi))
            leaf = o + along * s + normal * 0.04
            add("door", _rect(rng, leaf, along * dw, (0, 0, dh), density, noise))
        if i == 1 or (i == 3 and kind != "hallway" and rng.random() < 0.5):  # windows
            for _ in range(int(rng.integers(1, 3))):
                ww, wh = rng.uniform(0.8, 1.6), rng.uniform(1.0, 1.4)
                s = rng.uniform(0.2, max(length - ww - 0.2, 0.21))
                z0 = rng.uniform(0.8, 1.0)
                lo = o + along * s - normal * 0.1 + np.array([0, 0, z0])
                hi = o + along * (s + ww) + normal * 0.1 + np.array([0, 0, z0 + wh])
                holes.append((lo, hi))
                pane = o + along * s + np.array([0, 0, z0]) - normal * 0.02
                add("window", _rect(rng, pane, along * ww, (0, 0, wh), density * 0.6, noise))
        for lo, hi in holes:
            pts = pts[~_inside(pts, (np.minimum(lo, hi), np.maximum(lo, hi)), eps=0.0)]
        add("wall", pts)

    if rng.random() < 0.5:  # a beam across the ceiling
        y0 = rng.uniform(0.5, d - 0.8)
        lo, hi = np.array([0, y0, h - 0.4]), np.array([w, y0 + 0.3, h])
        add("beam", _box(rng, lo, hi, density, noise, bottom=True), (lo, hi))
    if rng.random() < 0.5:  # a column in a corner
        lo = np.array([w - 0.45, d - 0.45, 0])
        add(
            "column",
            _box(rng, lo, lo + np.array([0.45, 0.45, h]), density, noise),
            (lo, lo + [0.45, 0.45, h]),
        )

    board_on = rng.integers(2, 4)  # a board on the x=0 or x=w wall
    if kind != "hallway":
        bw, bh = min(rng.uniform(1.5, 3.0), d - 0.6), rng.uniform(0.9, 1.2)
        y0, z0 = rng.uniform(0.3, d - bw - 0.3), rng.uniform(0.9, 1.1)
        x = 0.03 if board_on == 2 else w - 0.03
        add("board", _rect(rng, (x, y0, z0), (0, bw, 0), (0, 0, bh), density, noise))
        # bookcases against the long wall y = d
        for _ in range(int(rng.integers(1, 3))):
            bw2 = rng.uniform(0.8, 1.4)
            x0 = rng.uniform(0.6, max(w - bw2 - 0.6, 0.61))
            lo = np.array([x0, d - 0.38, 0])
            hi = np.array([x0 + bw2, d, rng.uniform(1.8, 2.2)])
            add("bookcase", _box(rng, lo, hi, density, noise), (lo, hi))
        # tables with chairs
        n_tables = 1 if kind == "office" else 2
        for t in range(n_tables):
            tw, td = rng.uniform(1.2, 2.0), rng.uniform(0.7, 1.0)
            cx = (t + 1) * w / (n_tables + 1) + rng.uniform(-0.3, 0.3)
            cy = d / 2 + rng.uniform(-0.3, 0.3)
            top_lo = np.array([cx - tw / 2, cy - td / 2, 0.72])
            top_hi = np.array([cx + tw / 2, cy + td / 2, 0.76])
            legs = [
                _box(rng, (x - 0.03, y - 0.03, 0), (x + 0.03, y + 0.03, 0.72), density, noise)
                for x in (top_lo[0] + 0.05, top_hi[0] - 0.05)
                for y in (top_lo[1] + 0.05, top_hi[1] - 0.05)
            ]
            add("table", np.concatenate([_box(rng, top_lo, top_hi, density, noise, True), *legs]))
            for side in (-1, 1):
                for _ in range(int(rng.integers(1, 3))):
                    sx = cx + rng.uniform(-tw / 2 + 0.3, tw / 2 - 0.3)
                    sy = cy + side * (td / 2 + rng.uniform(0.25, 0.45))
                    seat_lo = np.array([sx - 0.22, sy - 0.22, 0.42])
                    seat = _box(rng, seat_lo, seat_lo + [0.44, 0.44, 0.05], density, noise, True)
                    by = sy + side * 0.2
                    back = _box(
                        rng,
                        (sx - 0.22, by - 0.02, 0.47),
                        (sx + 0.22, by + 0.02, 0.9),
                        density,
                        noise,
                    )
                    stem = _box(
                        rng, (sx - 0.03, sy - 0.03, 0), (sx + 0.03, sy + 0.03, 0.42), density, noise
                    )
                    add("chair", np.concatenate([seat, back, stem]))
            for _ in range(int(rng.integers(1, 4))):  # things on the table
                s = rng.uniform(0.08, 0.3, 3)
                p = np.array(
                    [
                        rng.uniform(top_lo[0], top_hi[0] - s[0]),
                        rng.uniform(top_lo[1], top_hi[1] - s[1]),
                        0.76,
                    ]
                )
                add("clutter", _box(rng, p, p + s, density, noise))
        if rng.random() < 0.6:  # a sofa along the y = 0 wall
            sw = rng.uniform(1.6, 2.2)
            x0 = rng.uniform(0.3, max(w - sw - 0.3, 0.31))
            base_lo, base_hi = np.array([x0, 0.15, 0]), np.array([x0 + sw, 0.95, 0.45])
            back_lo, back_hi = np.array([x0, 0.05, 0]), np.array([x0 + sw, 0.3, 0.85])
            pts = np.concatenate(
                [
                    _box(rng, base_lo, base_hi, density, noise),
                    _box(rng, back_lo, back_hi, density, noise),
                ]
            )
            pts = pts[~_inside(pts, (back_lo, back_hi)) & ~_inside(pts, (base_lo, base_hi))]
            add("sofa", pts, (back_lo, back_hi))
    for _ in range(int(rng.integers(2, 6))):  # clutter on the floor
        s = rng.uniform(0.15, 0.5, 3)
        p = np.array([rng.uniform(0.2, w - 0.2 - s[0]), rng.uniform(0.2, d - 0.2 - s[1]), 0])
        add("clutter", _box(rng, p, p + s, density, noise))

    solids = [o.solid for o in objs if o.solid is not None]
    out = []
    for o in objs:
        keep = np.ones(len(o.points), dtype=bool)
        for box in solids:
            if box is not o.solid:
                keep &= ~_inside(o.points, box)
        pts = o.points[keep]
        if len(pts) == 0:
            continue
        rgb = np.clip(o.tint + rng.normal(0, 8, (len(pts), 3)), 0, 255).round().astype(np.uint8)
        out.append((o.cls, pts, rgb))
    return out


def write_rooms(
    root: str | os.PathLike,
    rooms_per_area: int = 2,
    areas: tuple[int, ...] = (1, 2, 3, 4, 5, 6),
    density: float = 150.0,
    noise: float = 0.005,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write procedural rooms as ``<root>/Stanford3dDataset_v1.2_Aligned_Version``.

    Room ``i`` of area ``a`` is drawn from ``numpy.random.default_rng([seed, a, i])``, so
    the output is the same on every machine; kinds cycle office, conferenceRoom,
    hallway. An existing folder written with the same arguments is reused.

    Returns:
        the ``Stanford3dDataset_v1.2_Aligned_Version`` folder.
    """
    if rooms_per_area < 1:
        raise InputError(f"rooms_per_area: must be >= 1, got {rooms_per_area}")
    if not areas or any(a not in range(1, 7) for a in areas):
        raise InputError(f"areas: expected values in 1..6, got {areas}")
    params = dict(
        rooms_per_area=rooms_per_area, areas=list(areas), density=density, noise=noise, seed=seed
    )
    folder = Path(root).expanduser() / FOLDER
    marker = folder / _MARKER
    key = fingerprint(params)  # the datasets' one cache-key helper
    if folder.exists() and not overwrite:
        try:
            written = json.loads(marker.read_text())
        except (OSError, ValueError):
            written = None
        if isinstance(written, dict) and key in (written.get("fingerprint"), fingerprint(written)):
            return folder
        raise InputError(
            f"{folder}: exists and was not written with these arguments; pass "
            "overwrite=True to replace it (on the command line: another --data-root)"
        )
    with atomic_folder(folder, replace=True) as tmp:
        _write_areas(tmp, areas, rooms_per_area, density, noise, seed)
        (tmp / _MARKER).write_text(json.dumps({"params": params, "fingerprint": key}))
    return folder


def _write_areas(
    tmp: Path, areas: Sequence[int], rooms_per_area: int, density: float, noise: float, seed: int
) -> None:
    kinds = ("office", "conferenceRoom", "hallway")
    for a in areas:
        counter: dict[str, int] = {}
        offset = np.array([20.0 * a, -10.0 * a, 0.0])  # rooms sit anywhere in their area
        for i in range(rooms_per_area):
            rng = np.random.default_rng([seed, a, i])
            kind = kinds[i % len(kinds)]
            counter[kind] = counter.get(kind, 0) + 1
            name = f"{kind}_{counter[kind]}"
            room = tmp / f"Area_{a}" / name
            (room / "Annotations").mkdir(parents=True)
            per_class: dict[str, int] = {}
            rows = []
            for cls, xyz, rgb in generate_room(rng, kind, density, noise):
                assert cls in CLASSES
                per_class[cls] = per_class.get(cls, 0) + 1
                table = np.concatenate([xyz + offset, rgb.astype(np.float64)], axis=1)
                _savetxt(room / "Annotations" / f"{cls}_{per_class[cls]}.txt", table)
                rows.append(table)
            _savetxt(room / f"{name}.txt", np.concatenate(rows))


def _savetxt(path: Path, table: np.ndarray) -> None:
    np.savetxt(path, table, fmt="%.3f %.3f %.3f %d %d %d")
