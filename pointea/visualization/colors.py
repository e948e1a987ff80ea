"""Colours: the label palette, ShapeNetPart part colours and legends, and depth / height cues.

A label keeps its colour across figures (:func:`palette` never depends on how many colours
are asked for), a ShapeNetPart category's k-th part always gets ``palette[k]``, and red is
kept for wrong points. :func:`depth_shade` darkens far points (keeping the hue, so part
colours stay readable) and :func:`height_colors` colours a cloud along its up axis: the
two depth cues of the renders.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from ..labels import CATEGORY_PARTS, PART_NAMES, SHAPENET_CATEGORIES, category_index

__all__ = [
    "PALETTE",
    "ERROR_COLOR",
    "CORRECT_COLOR",
    "BACKGROUND",
    "HEIGHT_RAMP",
    "as_numpy",
    "palette",
    "label_colors",
    "part_table",
    "part_colors",
    "part_legend",
    "labels_to_colors",
    "height_colors",
    "depth_shade",
]

PALETTE: np.ndarray = np.array(
    [
        (0.20, 0.45, 0.85),  # blue
        (1.00, 0.60, 0.10),  # orange
        (0.25, 0.70, 0.30),  # green
        (0.60, 0.35, 0.80),  # purple
        (0.95, 0.80, 0.10),  # yellow
        (0.15, 0.78, 0.85),  # cyan
        (0.55, 0.35, 0.20),  # brown
        (0.95, 0.45, 0.75),  # pink
        (0.50, 0.55, 0.15),  # olive
        (0.10, 0.25, 0.45),  # navy
    ],
    dtype=np.float64,
)
ERROR_COLOR: tuple[float, float, float] = (0.90, 0.08, 0.08)
CORRECT_COLOR: tuple[float, float, float] = (0.80, 0.80, 0.80)
BACKGROUND: tuple[float, float, float] = (1.0, 1.0, 1.0)


def as_numpy(value: Any) -> Any:
    """Tensors (on any device) to numpy; anything else unchanged."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return value.detach().cpu().numpy()
    return value


def palette(n: int) -> np.ndarray:
    """``(n, 3)`` distinct colours in ``[0, 1]``: :data:`PALETTE` first, then golden-angle hues.

    Colour ``i`` never depends on ``n``, so a label keeps its colour across figures.
    """
    cols = [tuple(c) for c in PALETTE[:n]]
    for i in range(len(PALETTE), n):
        h = (i * 0.618033988749895) % 1.0
        s, v = (0.65, 0.85) if i % 2 else (0.85, 0.65)
        cols.append(colorsys.hsv_to_rgb(h, s, v))
    return np.asarray(cols, dtype=np.float64).reshape(n, 3)


def label_colors(labels: np.ndarray | Sequence[int], num_labels: int | None = None) -> np.ndarray:
    """Colour each point by its integer label with :func:`palette`.

    Args:
        labels: ``(N,)`` non-negative integers.
        num_labels: size of the label set (default: ``max(labels) + 1``).

    Returns:
        ``(N, 3)`` float64 colours in ``[0, 1]``.
    """
    lab = np.asarray(as_numpy(labels), dtype=np.int64).reshape(-1)
    if lab.size and lab.min() < 0:
        raise InputError(f"labels must be non-negative, got {int(lab.min())}")
    n = int(num_labels if num_labels is not None else (lab.max() + 1 if lab.size else 1))
    return palette(max(n, int(lab.max()) + 1 if lab.size else 1))[lab]


def part_table() -> tuple[list[str], list[list[int]], list[str]]:
    """``(categories, CATEGORY_PARTS, PART_NAMES)`` of ShapeNetPart (:mod:`pointea.labels`)."""
    names = list(SHAPENET_CATEGORIES)
    return names, [list(p) for p in CATEGORY_PARTS], list(PART_NAMES)


def part_colors(
    labels: np.ndarray | Sequence[int], category: int | str | None = None
) -> np.ndarray:
    """Colour ShapeNetPart part labels with a fixed palette per category.

    With a ``category``, a category's k-th part always gets ``palette[k]`` (so a chair's
    back is the same colour in every figure, and a category's parts never share a
    colour); labels outside the category continue the palette after them. Without it,
    the global part id picks the colour.

    Args:
        labels: ``(N,)`` global part ids (0..49).
        category: index (0..15) or name (``"Chair"``, any case).

    Returns:
        ``(N, 3)`` float64 colours.
    """
    lab = np.asarray(as_numpy(labels), dtype=np.int64).reshape(-1)
    if category is None:
        return label_colors(lab)
    _, parts_table, _ = part_table()
    parts = parts_table[category_index(category)]
    top = max(int(lab.max()) + 1 if lab.size else 0, max(parts) + 1)
    lut = np.full(top, -1, dtype=np.int64)
    lut[parts] = np.arange(len(parts))
    others = np.setdiff1d(np.arange(top), parts)
    lut[others] = len(parts) + np.arange(len(others))
    return palette(int(lut.max()) + 1)[lut[lab]]


def part_legend(category: int | str) -> list[tuple[str, tuple[float, float, float]]]:
    """``[(part name, colour), ...]`` for a category's parts, matching :func:`part_colors`."""
    _, parts_table, part_names = part_table()
    parts = parts_table[category_index(category)]
    cols = palette(len(parts))
    return [(part_names[p], tuple(float(x) for x in cols[k])) for k, p in enumerate(parts)]


def labels_to_colors(
    labels: np.ndarray, category: int | str | None, num_labels: int | None = None
) -> tuple[np.ndarray, list[tuple[str, tuple[float, float, float]]]]:
    """``(colours, legend)`` of labels: part colours and names with a category, else
    :func:`label_colors` and no legend."""
    if category is not None:
        return part_colors(labels, category), part_legend(category)
    return label_colors(labels, num_labels), []


# A perceptually ordered ramp (dark blue -> teal -> green -> yellow), low to high.
HEIGHT_RAMP: np.ndarray = np.array(
    [
        (0.18, 0.16, 0.50),
        (0.13, 0.40, 0.60),
        (0.12, 0.60, 0.55),
        (0.40, 0.78, 0.35),
        (0.95, 0.88, 0.20),
    ],
    dtype=np.float64,
)

_AXES = {"x": 0, "y": 1, "z": 2}


def height_colors(points: np.ndarray, up: str | Sequence[float] = "y") -> np.ndarray:
    """Colour each point by its height along ``up`` with :data:`HEIGHT_RAMP`.

    Args:
        points: ``(N, 3)``.
        up: ``"x"``, ``"y"``, ``"z"`` or a direction vector.

    Returns:
        ``(N, 3)`` float64 colours in ``[0, 1]``; a flat cloud gets the ramp's middle colour.
    """
    pts = np.asarray(as_numpy(points), dtype=np.float64).reshape(-1, 3)
    if isinstance(up, str):
        h = pts[:, _AXES[up]]
    else:
        u = np.asarray(up, dtype=np.float64)
        h = pts @ (u / np.linalg.norm(u))
    span = float(h.max() - h.min()) if len(h) else 0.0
    t = (h - h.min()) / span if span > 0 else np.full(len(h), 0.5)
    pos = t * (len(HEIGHT_RAMP) - 1)
    lo = np.clip(np.floor(pos).astype(np.int64), 0, len(HEIGHT_RAMP) - 2)
    frac = (pos - lo)[:, None]
    return HEIGHT_RAMP[lo] * (1 - frac) + HEIGHT_RAMP[lo + 1] * frac


def depth_shade(colors: np.ndarray, depth: np.ndarray, strength: float = 0.5) -> np.ndarray:
    """Darken colours with distance from the camera (a depth cue that keeps each hue).

    The nearest point keeps its colour exactly; the farthest is scaled by
    ``1 - strength``; brightness falls linearly in between.

    Args:
        colors: ``(N, 3)`` in ``[0, 1]``.
        depth: ``(N,)`` distances along the viewing axis.
        strength: ``0`` (no cue) to ``1`` (the farthest point black).
    """
    if not 0.0 <= strength <= 1.0:
        raise InputError(f"depth cue strength must be in [0, 1], got {strength}")
    cols = np.asarray(colors, dtype=np.float64)
    d = np.asarray(depth, dtype=np.float64).reshape(-1)
    ok = np.isfinite(d)
    if strength == 0 or not ok.any():
        return cols
    near, far = float(d[ok].min()), float(d[ok].max())
    t = np.where(ok, (d - near) / (far - near), 0.0) if far > near else np.zeros(len(d))
    return cols * (1.0 - strength * t)[:, None]
