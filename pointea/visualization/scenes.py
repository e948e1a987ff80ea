"""Room renders: a scene from above and in perspective, truth vs prediction vs errors.

Built on the public pieces of :mod:`pointea.visualization`
(:func:`~pointea.visualization.render_points`, :func:`~pointea.visualization.compose`,
:func:`~pointea.visualization.save_png`), so the PNGs look like the other renders. The
ceiling (and anything in the top ``cut`` share of the room's height) is left out so the
room's inside is visible, as S3DIS figures do.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..labels import S3DIS_CLASS_COLORS, S3DIS_CLASSES
from .figures import Panel, compose, save_png
from .render import render_points

__all__ = ["render_room", "render_room_comparison", "save_room_comparison"]

VIEWS = {"top": (0.0, 89.0), "perspective": (35.0, 35.0)}
_CORRECT = np.array([0.78, 0.78, 0.78])
_WRONG = np.array([0.85, 0.1, 0.1])


def visible_points(xyz: np.ndarray, cut: float, max_points: int, seed: int = 0) -> np.ndarray:
    """Indices of the points below the top ``cut`` share of the height (the ceiling, so a
    room can be seen into), at most ``max_points`` of them (a seeded uniform subsample)."""
    z = np.asarray(xyz)[:, 2]
    lo, hi = float(z.min()), float(z.max())
    idx = np.nonzero(z <= hi - cut * (hi - lo))[0] if hi > lo else np.arange(len(xyz))
    if len(idx) > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_points, replace=False))
    return idx


def render_room(
    xyz: np.ndarray,
    colors: np.ndarray,
    view: str = "perspective",
    *,
    width: int = 480,
    height: int = 360,
    point_size: float = 2.0,
    cut: float = 0.12,
    max_points: int = 300_000,
    backend: str | None = None,
) -> np.ndarray:
    """One view (``"top"`` or ``"perspective"``) of a room as an ``(H, W, 3)`` uint8 image.

    Args:
        xyz: ``(N, 3)`` coordinates, z up.
        colors: ``(N, 3)`` colours in [0, 1] or 0..255.
        cut: share of the room's height removed from the top (the ceiling).
        max_points: points drawn at most (a seeded subsample beyond).
    """
    if view not in VIEWS:
        raise InputError(f"view: expected one of {sorted(VIEWS)}, got {view!r}")
    xyz = np.asarray(xyz, dtype=np.float64)
    colors = np.asarray(colors, dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or len(xyz) == 0 or colors.shape != xyz.shape:
        raise InputError(
            f"xyz and colors: expected two (N, 3) arrays, got {xyz.shape} and {colors.shape}"
        )
    idx = visible_points(xyz, cut, max_points)
    azimuth, elevation = VIEWS[view]
    return render_points(
        xyz[idx],
        colors[idx],
        width=width,
        height=height,
        point_size=point_size,
        azimuth=azimuth,
        elevation=elevation,
        up="z",
        backend=backend,
    )


def render_room_comparison(
    xyz: np.ndarray,
    rgb: np.ndarray,
    truth: np.ndarray,
    pred: np.ndarray,
    *,
    title: str = "",
    class_names: Sequence[str] = S3DIS_CLASSES,
    class_colors: np.ndarray = S3DIS_CLASS_COLORS,
    views: Sequence[str] = ("top", "perspective"),
    width: int = 420,
    height: int = 320,
    backend: str | None = None,
) -> np.ndarray:
    """A grid: one row per view; columns colour, ground truth, prediction, errors."""
    truth, pred = np.asarray(truth).reshape(-1), np.asarray(pred).reshape(-1)
    n = len(xyz)
    if len(truth) != n or len(pred) != n:
        raise InputError(
            f"truth and pred: expected {n} labels each, got {len(truth)} and {len(pred)}"
        )
    k = len(class_names)
    if truth.size and (truth.min() < 0 or truth.max() >= k or pred.min() < 0 or pred.max() >= k):
        raise InputError(f"truth and pred: class ids must lie in [0, {k})")
    wrong = truth != pred
    columns = [
        ("colour", np.asarray(rgb, dtype=np.float64)),
        ("ground truth", class_colors[truth]),
        ("prediction", class_colors[pred]),
        (f"errors ({wrong.mean():.1%} of points)", np.where(wrong[:, None], _WRONG, _CORRECT)),
    ]
    panels = [
        Panel(
            render_room(xyz, cols, view, width=width, height=height, backend=backend),
            f"{name}, {view}",
        )
        for view in views
        for name, cols in columns
    ]
    present = np.unique(np.concatenate([truth, pred]))
    legend = [(class_names[c], tuple(float(v) for v in class_colors[c])) for c in present]
    return compose(panels, ncols=len(columns), legend=legend, title=title)


def save_room_comparison(path: str | os.PathLike, *args, **kwargs) -> Path:
    """:func:`render_room_comparison` written as a PNG."""
    return save_png(path, render_room_comparison(*args, **kwargs))
