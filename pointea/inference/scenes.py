"""Whole scenes through a scene segmenter: one class per point, its summary and its views.

:func:`segment_scene` runs a ``pct_semseg*`` model over every point of a scene in one
exact pass (:func:`pointea.models.semseg.room_logits`: external attention streams the
scene ``chunk_size`` points at a time, so memory stays bounded for 10^6 points and more;
no blocks, no voting); it is the one library call behind every scene prediction, and
:class:`~pointea.inference.results.SceneSegmentation` holds its result.
:func:`render_scene` and :func:`scene_figure` draw a segmented scene like the other
room renders (:mod:`pointea.visualization.scenes`): from above and in perspective, with
the ceiling cut away.

The model's inputs are those of training (:func:`~pointea.scene_features.room_features`):
coordinates in metres with z up, and colours in [0, 1]. A scene with another up axis is
rotated to z up first (``up``); the outputs keep the file's own coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import InputError

__all__ = [
    "scene_class_colors",
    "scene_class_names",
    "display_subset",
    "extent_warning",
    "scene_figure",
    "segment_scene",
    "render_scene",
    "to_z_up",
]

#: the largest N x N float32 attention map a self-attention model may build (2 GiB)
SELF_ATTENTION_BYTES = 2**31
#: S3DIS rooms span about 3 to 50 m; far outside this, the units are probably wrong
EXTENT_RANGE_M = (0.5, 200.0)


def to_z_up(xyz: np.ndarray, up: str = "z") -> np.ndarray:
    """``(N, 3)`` coordinates rotated so that the ``up`` axis becomes z (a proper
    rotation: ``y`` up maps ``(x, y, z)`` to ``(x, -z, y)``, ``x`` up to ``(y, z, x)``)."""
    xyz = np.asarray(xyz)
    if up == "z":
        return xyz
    if up == "y":
        return np.stack([xyz[:, 0], -xyz[:, 2], xyz[:, 1]], axis=1)
    if up == "x":
        return np.stack([xyz[:, 1], xyz[:, 2], xyz[:, 0]], axis=1)
    raise InputError(f"up must be 'x', 'y' or 'z', got {up!r}")


def scene_class_names(num_classes: int, names: Sequence[str] | None = None) -> list[str]:
    """The model's class names: its own, else S3DIS's 13, else ``"0" .. "C-1"``."""
    from ..datasets.s3dis import CLASSES

    if names is not None and len(names) == num_classes:
        return [str(n) for n in names]
    if num_classes == len(CLASSES):
        return list(CLASSES)
    return [str(i) for i in range(num_classes)]


def scene_class_colors(num_classes: int) -> np.ndarray:
    """``(C, 3)`` colours in [0, 1]: S3DIS's legend colours for 13 classes (PointNet's
    visualisations), else the label palette."""
    from ..datasets.s3dis import CLASS_COLORS
    from ..visualization.colors import palette

    return CLASS_COLORS.copy() if num_classes == len(CLASS_COLORS) else palette(num_classes)


def _as_array(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


@torch.no_grad()
def segment_scene(
    model: torch.nn.Module,
    xyz: Any,
    colors: Any,
    *,
    up: str = "z",
    chunk_size: int = 65_536,
    progress: bool = False,
) -> np.ndarray:
    """Class ids ``(N,)`` int64 of every point of one scene, in one exact pass.

    The library's scene entry: it validates the scene, rotates it to z up, moves it
    next to the origin in float64 (the inputs are translation invariant; float32 would
    lose millimetres on georeferenced coordinates of 10^5 m and more) and runs
    :func:`~pointea.models.semseg.room_logits`: a streamable model
    (:func:`~pointea.models.streaming.is_streamable`, external attention) goes through
    ``chunk_size`` points at a time, so memory stays bounded for 10^6 points and more;
    no blocks, no voting. :meth:`pointea.inference.Predictor.segment_scene` calls it.

    Args:
        model: a scene segmenter (:class:`~pointea.models.semseg.PCTSemSeg`) in eval
            mode.
        xyz: ``(N, 3)`` coordinates in metres (an array or a tensor).
        colors: ``(N, 3)`` colours: ``uint8`` (0..255) or floats in [0, 1].
        up: the scene's up axis (rotated to z, the training convention).
        chunk_size: points per chunk of the streamed pass (memory grows with it), at
            least :data:`~pointea.models.chunks.MIN_CHUNK`.
        progress: show a progress bar over the chunks (external attention).

    Raises:
        InputError: not a scene segmenter or not in eval mode; bad shapes, non-finite
            values, float colours outside [0, 1], a bad ``up`` or ``chunk_size``; or a
            self-attention model whose ``N x N`` map would exceed
            :data:`SELF_ATTENTION_BYTES`.
    """
    from ..models.chunks import check_chunk_size
    from ..models.semseg import PCTSemSeg, room_logits
    from ..models.streaming import is_streamable

    if not isinstance(model, PCTSemSeg):
        raise InputError(
            f"model: expected a scene segmenter (PCTSemSeg, a pct_semseg* model), got "
            f"{type(model).__name__}"
        )
    if model.training:
        raise InputError("model: scene inference needs eval mode (call model.eval())")
    check_chunk_size(chunk_size)
    xyz = _as_array(xyz).astype(np.float64, copy=False)
    rgb = _as_array(colors)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or len(xyz) == 0:
        raise InputError(f"points: expected shape (num_points >= 1, 3), got {xyz.shape}")
    if rgb.shape != xyz.shape:
        raise InputError(f"colors: expected shape {xyz.shape}, got {rgb.shape}")
    rgb = rgb / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64, copy=False)
    if not np.isfinite(xyz).all():
        raise InputError("points: non-finite coordinates (NaN or inf)")
    if not np.isfinite(rgb).all() or rgb.min() < 0 or rgb.max() > 1:
        raise InputError(
            "colors: expected uint8 (0..255) or floats in [0, 1] (divide 0..255 colours by 255)"
        )
    n = len(xyz)
    if not is_streamable(model) and 4 * n * n > SELF_ATTENTION_BYTES:
        raise InputError(
            f"this scene segmenter uses self-attention: its {n:,} x {n:,} attention map "
            f"needs {4 * n * n / 2**30:.0f} GiB; scenes this large need an external-attention "
            f"checkpoint (pct_semseg, the default), which streams the scene exactly"
        )
    z_up = to_z_up(xyz, up)
    local = z_up - z_up.min(axis=0)
    device = next(model.parameters()).device
    t_xyz = torch.from_numpy(local.astype(np.float32)).to(device)
    t_rgb = torch.from_numpy(rgb.astype(np.float32)).to(device)
    logits = room_logits(model, t_xyz, t_rgb, chunk_size=chunk_size, progress=progress)
    return logits.argmax(dim=1).cpu().numpy().astype(np.int64)


def extent_warning(xyz: np.ndarray, source: str = "") -> str | None:
    """A message when the scene's size suggests units other than metres (else ``None``)."""
    xyz = np.asarray(xyz)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or not len(xyz) or not np.isfinite(xyz).all():
        return None  # malformed: segment_scene says what is wrong
    ext = float(np.ptp(xyz, axis=0).max())
    lo, hi = EXTENT_RANGE_M
    if lo <= ext <= hi:
        return None
    return (
        f"{source or 'scene'}: spans {ext:.3g} units; the model was trained on rooms in "
        f"metres (about 3 to 50 m across): convert the coordinates to metres if they are "
        f"in other units, or the prediction is not meaningful"
    )


def render_scene(
    xyz: np.ndarray,
    rgb: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    truth: np.ndarray | None = None,
    title: str = "",
    up: str = "z",
    width: int = 420,
    height: int = 320,
    backend: str | None = None,
) -> np.ndarray:
    """A segmented scene from above and in perspective, ceiling cut away.

    Without ``truth``: columns colour and prediction; with it, the comparison of
    :func:`~pointea.visualization.scenes.render_room_comparison` (colour, truth,
    prediction, errors). A legend names the classes shown.

    Returns:
        ``(H, W, 3)`` uint8 image.
    """
    from ..visualization.figures import Panel, compose
    from ..visualization.scenes import render_room, render_room_comparison

    z_up = to_z_up(np.asarray(xyz, dtype=np.float64), up)
    labels = np.asarray(labels, dtype=np.int64)
    colors = scene_class_colors(len(class_names))
    if truth is not None:
        return render_room_comparison(
            z_up,
            rgb,
            truth,
            labels,
            title=title,
            class_names=class_names,
            class_colors=colors,
            width=width,
            height=height,
            backend=backend,
        )
    columns = [("colour", np.asarray(rgb, dtype=np.float64)), ("prediction", colors[labels])]
    panels = [
        Panel(
            render_room(z_up, cols, view, width=width, height=height, backend=backend),
            f"{name}, {view}",
        )
        for view in ("top", "perspective")
        for name, cols in columns
    ]
    present = np.flatnonzero(np.bincount(labels, minlength=len(class_names)))
    legend = [(class_names[c], tuple(float(v) for v in colors[c])) for c in present]
    return compose(panels, ncols=len(columns), legend=legend, title=title)


def display_subset(xyz_z_up: np.ndarray, max_points: int, cut: float = 0.12, seed: int = 0):
    """Indices shown in an interactive view: points below the top ``cut`` share of the
    height (the ceiling), at most ``max_points`` of them (a seeded uniform subsample)."""
    from ..visualization.scenes import visible_points

    return visible_points(xyz_z_up, cut, max_points, seed)


def scene_figure(
    xyz: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    title: str = "",
    up: str = "z",
    max_points: int = 50_000,
    seed: int = 0,
) -> Any:
    """An interactive (plotly) view of a segmented scene: class colours, hover shows the
    class. At most ``max_points`` points below the ceiling are drawn (a seeded uniform
    subsample, said in the title), which keeps the page a few MB for any scene size."""
    from ..visualization import cloud_figure

    if max_points < 1:
        raise InputError(f"max_points: must be >= 1, got {max_points}")
    z_up = to_z_up(np.asarray(xyz, dtype=np.float64), up)
    labels = np.asarray(labels, dtype=np.int64)
    idx = display_subset(z_up, max_points, seed=seed)
    colors = scene_class_colors(len(class_names))
    shown = f"{len(idx):,} of {len(labels):,} points shown, ceiling cut"
    full = f"{title} ({shown})" if title else shown
    hover = [class_names[i] for i in labels[idx]]
    size = 2.0 if len(idx) > 20_000 else 3.0
    return cloud_figure(
        z_up[idx], colors[labels[idx]], hover=hover, title=full, up="z", point_size=size
    )
