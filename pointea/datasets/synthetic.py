"""Procedural offline stand-ins written in exactly the published on-disk formats.

No download is needed to run the readers, trainers and notebooks: this module writes

* a classification set as ``modelnet40_ply_hdf5_2048/`` (HDF5 files with ``data``,
  ``label`` (uint8, (n, 1)), ``normal`` and ``faceId`` keys, ``shape_names.txt``,
  ``train_files.txt`` / ``test_files.txt`` with the published ``data/modelnet40_ply_hdf5_2048/``
  prefix), read by :class:`~pointea.datasets.ModelNet40`;
* a part-segmentation set as ``shapenetcore_partanno_segmentation_benchmark_v0_normal/``
  (``synsetoffset2category.txt``, ``train_test_split/shuffled_*_file_list.json``,
  ``<synset>/<token>.txt`` rows ``x y z nx ny nz part``) using the real ShapeNetPart
  category names, synset ids and global part ids, read by
  :class:`~pointea.datasets.ShapeNetPart`.

Shapes are built from surface primitives (ellipsoids, boxes, cylinders, frusta, tori,
sheets) with area-proportional point sampling and exact normals. Each instance varies in
proportions, anisotropic scale, rotation about the up axis (y), noise and cut-out regions,
and is normalised into the unit sphere like ModelNet40, so classes are not separable by a
trivial statistic (see :func:`trivial_baseline_accuracy`). Everything is a deterministic
function of ``seed``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, InputError
from .shapenetpart import CATEGORY_PARTS, SHAPENET_CATEGORIES

__all__ = [
    "CLASSIFICATION_CLASSES",
    "SEGMENTATION_CATEGORIES",
    "write_classification",
    "write_part_segmentation",
    "ensure_synthetic",
    "trivial_baseline_accuracy",
    "sample_shape",
]

GENERATOR_VERSION = 1
MARKER = ".pointea_synthetic.json"
CLS_FOLDER = "modelnet40_ply_hdf5_2048"
SEG_FOLDER = "shapenetcore_partanno_segmentation_benchmark_v0_normal"

Rng = np.random.Generator


# ============================================================== surface primitives
# Each returns (points (n, 3), normals (n, 3)) in local coordinates, y is up.
def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _ellipsoid(n: int, rng: Rng, radii: tuple[float, float, float]) -> tuple[np.ndarray, ...]:
    d = _unit(rng.normal(size=(n, 3)))
    r = np.asarray(radii)
    return d * r, _unit(d / r)


def _ellipsoid_area(radii: tuple[float, float, float]) -> float:
    a, b, c = radii
    p = 1.6075
    return 4 * np.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p)


def _box(n: int, rng: Rng, size: tuple[float, float, float]) -> tuple[np.ndarray, ...]:
    s = np.asarray(size) / 2
    areas = np.array([s[1] * s[2], s[0] * s[2], s[0] * s[1]] * 2)
    face = rng.choice(6, size=n, p=areas / areas.sum())
    pts = rng.uniform(-1, 1, size=(n, 3)) * s
    axis = face % 3
    sign = np.where(face < 3, 1.0, -1.0)
    pts[np.arange(n), axis] = sign * s[axis]
    nrm = np.zeros((n, 3))
    nrm[np.arange(n), axis] = sign
    return pts, nrm


def _box_area(size: tuple[float, float, float]) -> float:
    x, y, z = size
    return 2 * (x * y + y * z + x * z)


def _frustum(
    n: int,
    rng: Rng,
    r0: float,
    r1: float,
    h: float,
    cap0: bool,
    cap1: bool,
) -> tuple[np.ndarray, ...]:
    """Side of a frustum from radius r0 at y=-h/2 to r1 at y=+h/2 (+ optional caps)."""
    slant = np.hypot(h, r0 - r1)
    areas = np.array([np.pi * (r0 + r1) * slant, np.pi * r0**2 * cap0, np.pi * r1**2 * cap1])
    which = rng.choice(3, size=n, p=areas / areas.sum())
    theta = rng.uniform(0, 2 * np.pi, size=n)
    # side: density proportional to the radius -> inverse CDF of r(t) = r0 + (r1 - r0) t
    u = rng.uniform(size=n)
    dr = r1 - r0
    if abs(dr) < 1e-9:
        t = u
    else:
        t = (-r0 + np.sqrt(np.maximum(r0**2 + u * (2 * r0 * dr + dr**2), 0.0))) / dr
    t = np.clip(t, 0, 1)
    rad = r0 + dr * t
    y = -h / 2 + h * t
    # caps: uniform on disks
    rc = np.sqrt(rng.uniform(size=n))
    rad = np.where(which == 1, rc * r0, np.where(which == 2, rc * r1, rad))
    y = np.where(which == 1, -h / 2, np.where(which == 2, h / 2, y))
    pts = np.stack([rad * np.cos(theta), y, rad * np.sin(theta)], axis=1)
    side_n = _unit(np.stack([np.cos(theta) * h, np.full(n, r0 - r1), np.sin(theta) * h], 1))
    nrm = side_n.copy()
    nrm[which == 1] = (0, -1, 0)
    nrm[which == 2] = (0, 1, 0)
    return pts, nrm


def _frustum_area(r0: float, r1: float, h: float, cap0: bool, cap1: bool) -> float:
    return np.pi * (r0 + r1) * np.hypot(h, r0 - r1) + np.pi * (r0**2 * cap0 + r1**2 * cap1)


def _torus(
    n: int,
    rng: Rng,
    big: float,
    small: float,
    arc: float = 2 * np.pi,
) -> tuple[np.ndarray, ...]:
    """Torus around the y axis in the xz plane; ``arc`` < 2 pi gives a partial ring."""
    m = 2 * n + 16
    phi = rng.uniform(0, 2 * np.pi, size=m)
    keep = rng.uniform(size=m) * (big + small) <= big + small * np.cos(phi)
    phi = phi[keep][:n]
    while phi.size < n:  # rare: top up
        extra = rng.uniform(0, 2 * np.pi, size=n)
        phi = np.concatenate([phi, extra])[:n]
    theta = rng.uniform(0, arc, size=n)
    ring = big + small * np.cos(phi)
    pts = np.stack([ring * np.cos(theta), small * np.sin(phi), ring * np.sin(theta)], 1)
    nrm = np.stack([np.cos(phi) * np.cos(theta), np.sin(phi), np.cos(phi) * np.sin(theta)], 1)
    return pts, nrm


def _sheet(n: int, rng: Rng, w: float, d: float, bend: float) -> tuple[np.ndarray, ...]:
    """Sheet over the xz plane, bent as y = bend * x^2 (area ~ w * d)."""
    x = rng.uniform(-w / 2, w / 2, size=n)
    z = rng.uniform(-d / 2, d / 2, size=n)
    y = bend * x**2
    nrm = _unit(np.stack([-2 * bend * x, np.ones(n), np.zeros(n)], 1))
    return np.stack([x, y, z], 1), nrm


@dataclass
class _Part:
    kind: str
    params: dict[str, Any]
    tag: str
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rot: np.ndarray | None = None  # (3, 3) local -> object rotation

    def area(self) -> float:
        p = self.params
        if self.kind == "ellipsoid":
            return _ellipsoid_area(p["radii"])
        if self.kind == "box":
            return _box_area(p["size"])
        if self.kind == "frustum":
            return _frustum_area(p["r0"], p["r1"], p["h"], p["cap0"], p["cap1"])
        if self.kind == "torus":
            return 4 * np.pi**2 * p["big"] * p["small"] * p.get("arc", 2 * np.pi) / (2 * np.pi)
        return p["w"] * p["d"] * (1 + abs(p["bend"]) * p["w"] / 2)

    def sample(self, n: int, rng: Rng) -> tuple[np.ndarray, np.ndarray]:
        fn: Callable[..., tuple[np.ndarray, ...]] = {
            "ellipsoid": _ellipsoid,
            "box": _box,
            "frustum": _frustum,
            "torus": _torus,
            "sheet": _sheet,
        }[self.kind]
        pts, nrm = fn(n, rng, **self.params)
        if self.rot is not None:
            pts, nrm = pts @ self.rot.T, nrm @ self.rot.T
        return pts + np.asarray(self.offset), nrm


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _cyl(
    r: float,
    h: float,
    tag: str,
    offset=(0.0, 0.0, 0.0),
    caps=(True, True),
    rot=None,
) -> _Part:
    return _Part(
        "frustum", {"r0": r, "r1": r, "h": h, "cap0": caps[0], "cap1": caps[1]}, tag, offset, rot
    )


# ============================================================== object builders
def _b_sphere(rng: Rng) -> list[_Part]:
    r = rng.uniform(0.9, 1.1, size=3)
    return [_Part("ellipsoid", {"radii": tuple(r)}, "body")]


def _b_cube(rng: Rng) -> list[_Part]:
    return [_Part("box", {"size": tuple(rng.uniform(0.75, 1.25, size=3))}, "body")]


def _b_cylinder(rng: Rng) -> list[_Part]:
    return [_cyl(rng.uniform(0.3, 0.6), rng.uniform(0.8, 2.0), "body")]


def _b_cone(rng: Rng) -> list[_Part]:
    r, h = rng.uniform(0.4, 0.8), rng.uniform(0.8, 1.8)
    tip = rng.uniform(0.0, 0.08)
    return [_Part("frustum", {"r0": r, "r1": tip, "h": h, "cap0": True, "cap1": False}, "body")]


def _b_torus(rng: Rng) -> list[_Part]:
    return [
        _Part("torus", {"big": rng.uniform(0.6, 0.9), "small": rng.uniform(0.15, 0.35)}, "body")
    ]


def _b_sheet(rng: Rng) -> list[_Part]:
    return [
        _Part(
            "sheet",
            {
                "w": rng.uniform(1.2, 2.0),
                "d": rng.uniform(1.0, 2.0),
                "bend": rng.uniform(-0.35, 0.35),
            },
            "body",
        )
    ]


def _legs(
    rng: Rng, w: float, d: float, height: float, top_y: float, tag: str, inset: float
) -> list[_Part]:
    r = rng.uniform(0.03, 0.06)
    square = rng.uniform() < 0.5
    out = []
    for sx in (-1, 1):
        for sz in (-1, 1):
            off = (sx * (w / 2 - inset), top_y - height / 2, sz * (d / 2 - inset))
            if square:
                out.append(_Part("box", {"size": (2 * r, height, 2 * r)}, tag, off))
            else:
                out.append(_cyl(r, height, tag, off, caps=(True, False)))
    return out


def _b_table(rng: Rng) -> list[_Part]:
    w, d = rng.uniform(1.2, 2.0), rng.uniform(0.8, 1.4)
    t, height = rng.uniform(0.05, 0.1), rng.uniform(0.6, 1.0)
    parts = [_Part("box", {"size": (w, t, d)}, "top", (0, height, 0))]
    if rng.uniform() < 0.3:  # pedestal table
        parts.append(_cyl(rng.uniform(0.05, 0.1), height, "leg", (0, height / 2, 0)))
        parts.append(_cyl(rng.uniform(0.3, 0.5), 0.04, "support", (0, 0.02, 0)))
    else:
        parts += _legs(rng, w, d, height, height - t / 2, "leg", rng.uniform(0.05, 0.15))
        if rng.uniform() < 0.7:  # stretchers between the legs
            y = rng.uniform(0.15, 0.4) * height
            s = 0.03
            parts.append(_Part("box", {"size": (w * 0.8, s, s)}, "support", (0, y, d / 2 * 0.8)))
            parts.append(_Part("box", {"size": (w * 0.8, s, s)}, "support", (0, y, -d / 2 * 0.8)))
    return parts


def _b_chair(rng: Rng) -> list[_Part]:
    w, d = rng.uniform(0.8, 1.1), rng.uniform(0.8, 1.0)
    t, seat_y = rng.uniform(0.06, 0.12), rng.uniform(0.7, 0.95)
    back_h = rng.uniform(0.7, 1.2)
    tilt = rng.uniform(0.0, 0.25)
    parts = [_Part("box", {"size": (w, t, d)}, "seat", (0, seat_y, 0))]
    parts.append(
        _Part(
            "box",
            {"size": (w, back_h, t)},
            "back",
            (0, seat_y + back_h / 2, -d / 2 + t / 2 - np.sin(tilt) * back_h / 2),
            _rot_x(-tilt),
        )
    )
    parts += _legs(rng, w, d, seat_y, seat_y - t / 2, "leg", 0.06)
    if rng.uniform() < 0.4:
        for sx in (-1, 1):
            parts.append(
                _Part(
                    "box",
                    {"size": (0.06, 0.06, d * 0.8)},
                    "arm",
                    (sx * (w / 2 - 0.03), seat_y + 0.3, 0),
                )
            )
            parts.append(
                _Part(
                    "box",
                    {"size": (0.05, 0.3, 0.05)},
                    "arm",
                    (sx * (w / 2 - 0.03), seat_y + 0.15, d * 0.3),
                )
            )
    return parts


def _b_lamp(rng: Rng) -> list[_Part]:
    base_r, base_h = rng.uniform(0.3, 0.5), rng.uniform(0.05, 0.12)
    pole_h = rng.uniform(1.2, 2.0)
    r0, r1, sh = rng.uniform(0.35, 0.6), rng.uniform(0.12, 0.3), rng.uniform(0.3, 0.55)
    top = base_h + pole_h
    return [
        _cyl(base_r, base_h, "base", (0, base_h / 2, 0)),
        _cyl(
            rng.uniform(0.025, 0.05),
            pole_h,
            "tube",
            (0, base_h + pole_h / 2, 0),
            caps=(False, False),
        ),
        _Part(
            "frustum",
            {"r0": r0, "r1": r1, "h": sh, "cap0": False, "cap1": False},
            "shade",
            (0, top - sh * 0.3, 0),
        ),
        _cyl(r1 * 0.5, 0.05, "canopy", (0, top - sh * 0.3 + sh / 2 + 0.025, 0)),
    ]


def _b_mug(rng: Rng) -> list[_Part]:
    r, h = rng.uniform(0.4, 0.6), rng.uniform(0.8, 1.3)
    hr = rng.uniform(0.2, 0.35)
    handle = _Part(
        "torus",
        {"big": hr, "small": rng.uniform(0.04, 0.07), "arc": np.pi},
        "handle",
        (r, rng.uniform(-0.1, 0.1) * h, 0),
        _rot_z(-np.pi / 2) @ _rot_x(-np.pi / 2),
    )  # half ring in the xy plane, +x
    return [_cyl(r, h, "cup", caps=(True, False)), handle]


def _b_airplane(rng: Rng) -> list[_Part]:
    length, rad = rng.uniform(2.0, 3.0), rng.uniform(0.12, 0.22)
    span, chord = rng.uniform(1.8, 3.0), rng.uniform(0.35, 0.7)
    wing_x = rng.uniform(-0.15, 0.2) * length
    tail_x = -length / 2 + 0.15
    parts = [
        _Part("ellipsoid", {"radii": (length / 2, rad, rad)}, "body"),
        _Part(
            "box",
            {"size": (chord, 0.04, span)},
            "wing",
            (wing_x, -rad * 0.3, 0),
            _rot_y(rng.uniform(-0.3, 0.3)),
        ),
        _Part("box", {"size": (0.3, 0.03, span * 0.35)}, "tail", (tail_x, rad * 0.5, 0)),
        _Part("box", {"size": (0.35, 0.45, 0.03)}, "tail", (tail_x, rad + 0.2, 0)),
    ]
    if rng.uniform() < 0.8:
        for sz in (-1, 1):
            z = sz * span * rng.uniform(0.18, 0.3)
            parts.append(
                _cyl(
                    0.07,
                    0.35,
                    "engine",
                    (wing_x + 0.1, -rad * 0.3 - 0.12, z),
                    rot=_rot_z(np.pi / 2),
                )
            )
    return parts


def _b_bottle(rng: Rng) -> list[_Part]:
    r, h = rng.uniform(0.3, 0.5), rng.uniform(1.0, 1.6)
    neck_r, sh, nh = rng.uniform(0.08, 0.15), rng.uniform(0.2, 0.4), rng.uniform(0.2, 0.45)
    return [
        _cyl(r, h, "body", (0, h / 2, 0), caps=(True, False)),
        _Part(
            "frustum",
            {"r0": r, "r1": neck_r, "h": sh, "cap0": False, "cap1": False},
            "body",
            (0, h + sh / 2, 0),
        ),
        _cyl(neck_r, nh, "neck", (0, h + sh + nh / 2, 0), caps=(False, False)),
    ]


#: Classification classes of the synthetic set, in label order.
CLASSIFICATION_CLASSES: dict[str, Callable[[Rng], list[_Part]]] = {
    "sphere": _b_sphere,
    "cube": _b_cube,
    "cylinder": _b_cylinder,
    "cone": _b_cone,
    "torus": _b_torus,
    "sheet": _b_sheet,
    "table": _b_table,
    "chair": _b_chair,
    "lamp": _b_lamp,
    "mug": _b_mug,
    "airplane": _b_airplane,
    "bottle": _b_bottle,
}

#: Part-segmentation categories: builder and part tag -> global ShapeNetPart part id.
SEGMENTATION_CATEGORIES: dict[str, tuple[Callable[[Rng], list[_Part]], dict[str, int]]] = {
    "Airplane": (_b_airplane, {"body": 0, "wing": 1, "tail": 2, "engine": 3}),
    "Chair": (_b_chair, {"back": 12, "seat": 13, "leg": 14, "arm": 15}),
    "Lamp": (_b_lamp, {"base": 24, "shade": 25, "canopy": 26, "tube": 27}),
    "Mug": (_b_mug, {"handle": 36, "cup": 37}),
    "Table": (_b_table, {"top": 47, "leg": 48, "support": 49}),
}


def sample_shape(
    parts: list[_Part],
    points: int,
    rng: Rng,
    *,
    aniso: tuple[float, float] = (0.75, 1.33),
    noise: float = 0.01,
    cut_prob: float = 0.3,
    cut_radius: tuple[float, float] = (0.25, 0.45),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample one instance: points, normals and the part index of each point.

    Points are sampled on the parts in proportion to their area, then the whole shape is
    scaled anisotropically, rotated about y, cut (a random ball removed) with probability
    ``cut_prob``, normalised into the unit sphere, jittered by ``noise`` and shuffled.

    Shapes:
        returns ``(points, 3)`` float32, ``(points, 3)`` float32, ``(points,)`` int64.
    """
    over = int(points * 1.6) + 8
    areas = np.array([p.area() for p in parts], dtype=np.float64)
    counts = rng.multinomial(over, areas / areas.sum())
    pts, nrm, pid = [], [], []
    for i, (part, c) in enumerate(zip(parts, counts, strict=True)):
        if c == 0:
            continue
        p, n = part.sample(int(c), rng)
        pts.append(p)
        nrm.append(n)
        pid.append(np.full(int(c), i))
    P, N, I = np.concatenate(pts), np.concatenate(nrm), np.concatenate(pid)
    scale = rng.uniform(*aniso, size=3)
    rot = _rot_y(rng.uniform(0, 2 * np.pi))
    P = (P * scale) @ rot.T
    N = _unit(N / scale) @ rot.T
    if rng.uniform() < cut_prob:
        centre = P[rng.integers(P.shape[0])]
        radius = rng.uniform(*cut_radius) * np.linalg.norm(P - P.mean(0), axis=1).max()
        keep = np.linalg.norm(P - centre, axis=1) > radius
        if keep.sum() >= points // 2:
            P, N, I = P[keep], N[keep], I[keep]
    sel = rng.choice(P.shape[0], size=points, replace=P.shape[0] < points)
    P, N, I = P[sel], N[sel], I[sel]
    P = P - P.mean(0)
    P = P / np.linalg.norm(P, axis=1).max()
    P = P + rng.normal(scale=noise, size=P.shape)
    P = P / max(1.0, float(np.linalg.norm(P, axis=1).max()))
    return P.astype(np.float32), N.astype(np.float32), I.astype(np.int64)


# ============================================================== writers
@contextlib.contextmanager
def _atomic_folder(final: Path, overwrite: bool):
    """Yield a temporary folder; on success it replaces ``final`` (atomically renamed)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists() and not overwrite:
        raise DataError(f"{final}: already exists (pass overwrite=True to replace it)")
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_sizes(**sizes: int) -> None:
    for k, v in sizes.items():
        if int(v) < 0 or (k == "points" and int(v) < 16):
            raise InputError(f"{k} must be {'>= 16' if k == 'points' else '>= 0'}, got {v}")


def write_classification(
    root: str | os.PathLike,
    *,
    num_classes: int = 12,
    train_per_class: int = 80,
    test_per_class: int = 25,
    points: int = 2048,
    seed: int = 0,
    shapes_per_file: int = 2048,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic classification set as ``root/modelnet40_ply_hdf5_2048/``.

    Args:
        root: the folder to pass to :class:`~pointea.datasets.ModelNet40` afterwards.
        num_classes: number of classes, 2..12 (the first ``num_classes`` of
            :data:`CLASSIFICATION_CLASSES`).
        train_per_class / test_per_class: shapes per class in each split.
        points: points per shape (2048 like the real files).
        seed: everything is a deterministic function of it.
        shapes_per_file: shapes per ``ply_data_*.h5`` file (2048 like the real files).
        overwrite: replace an existing folder.

    Returns:
        the archive folder written.
    """
    import h5py

    if not 2 <= num_classes <= len(CLASSIFICATION_CLASSES):
        raise InputError(
            f"num_classes must be in 2..{len(CLASSIFICATION_CLASSES)}, got {num_classes}"
        )
    _check_sizes(train_per_class=train_per_class, test_per_class=test_per_class, points=points)
    names = list(CLASSIFICATION_CLASSES)[:num_classes]
    final = Path(root).expanduser() / CLS_FOLDER
    with _atomic_folder(final, overwrite) as tmp:
        (tmp / "shape_names.txt").write_text("".join(f"{n}\n" for n in names))
        for split, per_class, offset in (
            ("train", train_per_class, 0),
            ("test", test_per_class, 1),
        ):
            rng = np.random.default_rng([seed, offset])
            labels = np.repeat(np.arange(num_classes), per_class)
            labels = labels[rng.permutation(labels.size)]
            n = labels.size
            data = np.zeros((n, points, 3), np.float32)
            normal = np.zeros((n, points, 3), np.float32)
            face = np.zeros((n, points), np.int32)
            for i, c in enumerate(labels):
                parts = CLASSIFICATION_CLASSES[names[c]](rng)
                data[i], normal[i], face[i] = sample_shape(parts, points, rng)
            files = []
            for k, start in enumerate(range(0, max(n, 1), shapes_per_file)):
                name = f"ply_data_{split}{k}.h5"
                with h5py.File(tmp / name, "w") as f:
                    sl = slice(start, start + shapes_per_file)
                    f.create_dataset("data", data=data[sl])
                    f.create_dataset("label", data=labels[sl].astype(np.uint8)[:, None])
                    f.create_dataset("normal", data=normal[sl])
                    f.create_dataset("faceId", data=face[sl])
                files.append(f"data/{CLS_FOLDER}/{name}\n")
            (tmp / f"{split}_files.txt").write_text("".join(files))
        _write_marker(
            tmp,
            "modelnet40",
            seed,
            dict(
                num_classes=num_classes,
                train_per_class=train_per_class,
                test_per_class=test_per_class,
                points=points,
            ),
        )
    return final


def _token(rng: Rng) -> str:
    return "".join(f"{b:02x}" for b in rng.integers(0, 256, size=16))[:31]


def write_part_segmentation(
    root: str | os.PathLike,
    *,
    categories: Iterable[str] | None = None,
    train_per_category: int = 60,
    val_per_category: int = 10,
    test_per_category: int = 20,
    points: int = 2048,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic part-segmentation set in the ShapeNetPart text format.

    Args:
        root: the folder to pass to :class:`~pointea.datasets.ShapeNetPart` afterwards.
        categories: names from :data:`SEGMENTATION_CATEGORIES` (default: all five:
            Airplane, Chair, Lamp, Mug, Table).
        train_per_category / val_per_category / test_per_category: shapes per split.
        points: points per shape.
        seed: everything is a deterministic function of it.
        overwrite: replace an existing folder.

    Returns:
        the archive folder written
        (``root/shapenetcore_partanno_segmentation_benchmark_v0_normal``).
    """
    cats = list(SEGMENTATION_CATEGORIES) if categories is None else list(categories)
    for c in cats:
        if c not in SEGMENTATION_CATEGORIES:
            raise InputError(
                f"unknown synthetic category {c!r}; available: {', '.join(SEGMENTATION_CATEGORIES)}"
            )
    _check_sizes(
        train_per_category=train_per_category,
        val_per_category=val_per_category,
        test_per_category=test_per_category,
        points=points,
    )
    final = Path(root).expanduser() / SEG_FOLDER
    with _atomic_folder(final, overwrite) as tmp:
        (tmp / "synsetoffset2category.txt").write_text(
            "".join(f"{n}\t{s}\n" for n, s in SHAPENET_CATEGORIES.items())
        )
        (tmp / "train_test_split").mkdir()
        lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
        for ci, cat in enumerate(cats):
            builder, tag_to_id = SEGMENTATION_CATEGORIES[cat]
            synset = SHAPENET_CATEGORIES[cat]
            assert set(tag_to_id.values()) <= set(
                CATEGORY_PARTS[list(SHAPENET_CATEGORIES).index(cat)]
            )
            (tmp / synset).mkdir()
            rng = np.random.default_rng([seed, 100 + ci])
            for split, count in (
                ("train", train_per_category),
                ("val", val_per_category),
                ("test", test_per_category),
            ):
                for _ in range(count):
                    parts = builder(rng)
                    pos, nrm, idx = sample_shape(
                        parts, points, rng, cut_prob=0.15, cut_radius=(0.15, 0.3)
                    )
                    gid = np.array([tag_to_id[p.tag] for p in parts])[idx]
                    token = _token(rng)
                    rows = np.concatenate([pos, nrm, gid[:, None].astype(np.float32)], 1)
                    _write_rows(tmp / synset / f"{token}.txt", rows)
                    lists[split].append(f"shape_data/{synset}/{token}")
        for split, entries in lists.items():
            order = np.random.default_rng([seed, 7, len(split)]).permutation(len(entries))
            (tmp / "train_test_split" / f"shuffled_{split}_file_list.json").write_text(
                json.dumps([entries[i] for i in order])
            )
        _write_marker(
            tmp,
            "shapenetpart",
            seed,
            dict(
                categories=cats,
                train_per_category=train_per_category,
                val_per_category=val_per_category,
                test_per_category=test_per_category,
                points=points,
            ),
        )
    return final


def _write_rows(path: Path, rows: np.ndarray) -> None:
    fmt = " ".join(["%.6f"] * rows.shape[1])
    text = "\n".join(fmt % tuple(r) for r in rows.tolist())
    path.write_text(text + "\n")


def _write_marker(folder: Path, task: str, seed: int, params: dict[str, Any]) -> None:
    (folder / MARKER).write_text(
        json.dumps(
            {
                "generator": "pointea.datasets.synthetic",
                "version": GENERATOR_VERSION,
                "task": task,
                "seed": seed,
                "params": params,
            },
            indent=1,
            sort_keys=True,
        )
    )


_TASKS = {
    "modelnet40": "modelnet40",
    "classification": "modelnet40",
    "cls": "modelnet40",
    "shapenetpart": "shapenetpart",
    "segmentation": "shapenetpart",
    "seg": "shapenetpart",
    "part_segmentation": "shapenetpart",
}


def ensure_synthetic(
    task: str, root: str | os.PathLike = "data/synthetic", seed: int = 0, **sizes: Any
) -> Path:
    """Generate the synthetic set for ``task`` under ``root`` unless it is already there.

    The folder is written atomically and carries a marker file recording the generator
    version, seed and sizes; a folder whose marker does not match (or has none, e.g. an
    interrupted older run) is regenerated.

    Args:
        task: ``"modelnet40"`` (alias ``"classification"``) or ``"shapenetpart"``
            (alias ``"segmentation"``).
        root: where to write; pass the returned path to the reader.
        seed: generator seed.
        **sizes: forwarded to :func:`write_classification` /
            :func:`write_part_segmentation` (e.g. ``train_per_class=20``).

    Returns:
        ``root`` (the folder holding the archive folder), for ``ModelNet40(root)`` or
        ``ShapeNetPart(root)``.
    """
    key = _TASKS.get(task.lower().replace("-", "_"))
    if key is None:
        raise InputError(f"task must be one of {sorted(set(_TASKS))}, got {task!r}")
    root = Path(root).expanduser()
    if key == "modelnet40":
        writer: Callable[..., Path] = write_classification
        folder = root / CLS_FOLDER
        defaults = dict(num_classes=12, train_per_class=80, test_per_class=25, points=2048)
    else:
        writer = write_part_segmentation
        folder = root / SEG_FOLDER
        defaults = dict(
            categories=list(SEGMENTATION_CATEGORIES),
            train_per_category=60,
            val_per_category=10,
            test_per_category=20,
            points=2048,
        )
    unknown = set(sizes) - set(defaults)
    if unknown:
        raise InputError(f"unknown size argument(s) for {key}: {sorted(unknown)}")
    params = {**defaults, **sizes}
    if "categories" in params:
        params["categories"] = list(params["categories"])
    want = {"version": GENERATOR_VERSION, "task": key, "seed": seed, "params": params}
    if _marker_matches(folder, want):
        return root
    root.mkdir(parents=True, exist_ok=True)
    # Several processes (e.g. torchrun ranks) may call this at once: the first generates,
    # the others wait on the lock and then find a matching marker.
    with _file_lock(root / f".{folder.name}.lock"):
        if not _marker_matches(folder, want):
            writer(root, seed=seed, overwrite=True, **params)
    return root


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive advisory lock on ``path`` (no-op where ``fcntl`` is unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _marker_matches(folder: Path, want: dict[str, Any]) -> bool:
    try:
        have = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return all(have.get(k) == v for k, v in want.items())


# ============================================================== trivial baseline
def _extent_features(dataset: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    feats, labels = [], []
    for d in dataset:
        pos = np.asarray(d.pos, dtype=np.float64)
        ext = np.sort(pos.max(0) - pos.min(0))
        feats.append(ext)
        labels.append(int(np.asarray(d.y).reshape(-1)[0]))
    return np.asarray(feats), np.asarray(labels)


def trivial_baseline_accuracy(train_ds: Iterable[Any], test_ds: Iterable[Any]) -> float:
    """Accuracy of a nearest-centroid classifier on sorted bounding-box extents.

    Features are each cloud's three bounding-box side lengths, sorted (rotation about the
    up axis and axis order do not matter), standardised with the train statistics; each
    test cloud gets the class of the nearest train-class centroid. Report it beside a
    model's accuracy: a model must beat it clearly to show it learned shape, not size.

    Args:
        train_ds, test_ds: iterables of ``Data`` with ``pos`` (N, 3) and ``y`` (1,).

    Returns:
        test accuracy in [0, 1].
    """
    xtr, ytr = _extent_features(train_ds)
    xte, yte = _extent_features(test_ds)
    if xtr.size == 0 or xte.size == 0:
        raise InputError("trivial_baseline_accuracy needs non-empty train and test sets")
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-9
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    classes = np.unique(ytr)
    centroids = np.stack([xtr[ytr == c].mean(0) for c in classes])
    dist = ((xte[:, None, :] - centroids[None]) ** 2).sum(-1)
    pred = classes[dist.argmin(1)]
    return float((pred == yte).mean())
