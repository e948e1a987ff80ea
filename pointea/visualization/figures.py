"""Figures: panels laid out with titles and legends, label / comparison / grid figures, files.

Panels (``(H, W, 3)`` uint8 renders) are composed with matplotlib's Agg canvas (no
display, no pyplot state) and pasted pixel for pixel. The label figures use a depth cue
by default (far points darker, hues kept) so a shape's 3D form reads on paper; the
errors panel of :func:`render_comparison` stays flat: red is exactly "wrong".

Typical use::

    fig = render_comparison(pos, gt, pred, category="Chair")   # GT | prediction | errors
    save_png("chair.png", fig)
    export_ply("chair.ply", pos, labels=pred, category="Chair")
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..files import safe_name
from ..io import write_ply
from .camera import fit_camera
from .colors import (
    BACKGROUND,
    CORRECT_COLOR,
    ERROR_COLOR,
    as_numpy,
    label_colors,
    labels_to_colors,
    palette,
    part_colors,
)
from .render import render_points

__all__ = [
    "Panel",
    "compose",
    "render_labels",
    "render_comparison",
    "render_grid",
    "save_png",
    "export_ply",
]


@dataclass
class Panel:
    """One image of a figure, with its title (and the title's colour)."""

    image: np.ndarray
    title: str = ""
    title_color: str | tuple[float, float, float] = "black"
    legend: list[tuple[str, tuple[float, float, float]]] = field(default_factory=list)

    def __repr__(self) -> str:
        h, w = self.image.shape[:2]
        return f"Panel({w}x{h}, title={self.title!r})"


def _plain(text: str) -> str:
    """``text`` drawn literally by matplotlib: names made printable
    (:func:`~pointea.files.safe_name`), ``$`` not starting mathtext."""
    return safe_name(text).replace("$", r"\$")


_TITLE_H = 26
_LEGEND_ROW_H = 20
_PAD = 6


def compose(
    panels: Sequence[Panel],
    *,
    ncols: int | None = None,
    legend: Sequence[tuple[str, tuple[float, float, float]]] = (),
    title: str = "",
    background: Sequence[float] = BACKGROUND,
) -> np.ndarray:
    """Lay panels out on a grid with titles, a shared legend and a figure title.

    Drawn with matplotlib's Agg canvas (no display, no pyplot state); panels are pasted
    pixel for pixel, never resampled. Titles and legend names are drawn literally, with
    control characters and undecodable bytes escaped (:func:`~pointea.files.safe_name`).

    Args:
        panels: images of the same size, with titles.
        ncols: panels per row (default: all in one row).
        legend: ``[(label, colour), ...]`` drawn below the grid.
        title: figure title drawn above the grid.

    Returns:
        ``(H, W, 3)`` uint8 image.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    if not panels:
        raise InputError("compose needs at least one panel")
    ph, pw = panels[0].image.shape[:2]
    if any(p.image.shape[:2] != (ph, pw) for p in panels):
        raise InputError("all panels must have the same size")
    title = _plain(title)
    legend = [(_plain(name), color) for name, color in legend]
    ncols = max(1, min(ncols or len(panels), len(panels)))
    nrows = math.ceil(len(panels) / ncols)
    cell_h = ph + _TITLE_H
    grid_w = ncols * pw + (ncols + 1) * _PAD
    # Wide enough for the figure title and the widest legend entry.
    width = max(grid_w, _text_width(title, 12, bold=True) + 4 * _PAD)
    left = (width - grid_w) // 2  # the grid is centred when the title is wider
    top = _TITLE_H + _PAD if title else _PAD
    # Legend layout: entries flow left to right, wrapping at the figure width.
    entry_w = [24 + _text_width(name, 9) + 18 for name, _ in legend]
    rows: list[list[int]] = [[]]
    x = _PAD
    for i, w in enumerate(entry_w):
        if rows[-1] and x + w > width - _PAD:
            rows.append([])
            x = _PAD
        rows[-1].append(i)
        x += w
    legend_h = (len(rows) * _LEGEND_ROW_H + _PAD) if legend else 0
    height = top + nrows * (cell_h + _PAD) + legend_h

    dpi = 100
    fig = Figure(
        figsize=(width / dpi, height / dpi), dpi=dpi, facecolor=tuple(float(c) for c in background)
    )
    canvas = FigureCanvasAgg(fig)

    def fx(px: float) -> float:
        return px / width

    def fy(py_from_top: float) -> float:
        return 1.0 - py_from_top / height

    if title:
        fig.text(
            0.5,
            fy(_PAD + _TITLE_H / 2),
            title,
            ha="center",
            va="center",
            fontsize=12,
            weight="bold",
        )
    for k, p in enumerate(panels):
        r, c = divmod(k, ncols)
        x0 = left + _PAD + c * (pw + _PAD)
        y0 = top + r * (cell_h + _PAD)  # from the top
        if p.title:
            fig.text(
                fx(x0 + pw / 2),
                fy(y0 + _TITLE_H / 2),
                _plain(p.title),
                ha="center",
                va="center",
                fontsize=10,
                color=p.title_color,
            )
        img = np.asarray(p.image)
        if img.dtype != np.uint8:
            img = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
        # figimage offsets are in pixels from the bottom-left corner.
        fig.figimage(img[..., :3], xo=x0, yo=height - (y0 + _TITLE_H) - ph, origin="upper")
    if legend:
        y = top + nrows * (cell_h + _PAD)
        for row in rows:
            x = _PAD
            for i in row:
                name, color = legend[i]
                fig.patches.append(
                    Rectangle(
                        (fx(x + 4), fy(y + _LEGEND_ROW_H - 5)),
                        fx(14),
                        14 / height,
                        transform=fig.transFigure,
                        facecolor=color,
                        edgecolor="0.3",
                        lw=0.5,
                    )
                )
                fig.text(
                    fx(x + 24),
                    fy(y + _LEGEND_ROW_H / 2 + 1),
                    name,
                    ha="left",
                    va="center",
                    fontsize=9,
                )
                x += entry_w[i]
            y += _LEGEND_ROW_H
    canvas.draw()
    out = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    # Agg rounds the figure size; pad or crop to the exact layout size.
    fixed = np.empty((height, width, 3), dtype=np.uint8)
    fixed[:] = np.round(np.asarray(background) * 255).astype(np.uint8)
    h, w = min(height, out.shape[0]), min(width, out.shape[1])
    fixed[:h, :w] = out[:h, :w]
    return fixed


def _text_width(text: str, fontsize: float, bold: bool = False) -> int:
    """Width in pixels of ``text`` drawn at ``fontsize`` points on a 100 dpi figure."""
    if not text:
        return 0
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    prop = FontProperties(weight="bold" if bold else "normal")
    extent = TextPath((0, 0), text, size=fontsize * 100 / 72, prop=prop).get_extents()
    return int(math.ceil(extent.width))


def render_labels(
    points: np.ndarray,
    labels: np.ndarray,
    path: str | os.PathLike | None = None,
    *,
    category: int | str | None = None,
    label_names: Sequence[str] | None = None,
    title: str = "",
    width: int = 480,
    height: int = 480,
    point_size: float = 5.0,
    depth_cue: float = 0.5,
    **render_kw: Any,
) -> np.ndarray:
    """Render a cloud coloured by its labels, with a legend, and optionally save a PNG.

    Args:
        points: ``(N, 3)``.
        labels: ``(N,)`` class or part ids.
        path: where to write the PNG (``None``: only return the image).
        category: ShapeNetPart category (name or index): per-category part colours and
            part names in the legend.
        label_names: names for the legend when there is no category (only the labels
            present are listed).
        title: drawn above the render.
        width, height: size of the render (the figure adds the title and legend).
        depth_cue: darken far points (see :func:`render_points`); ``0``: flat colours.
        render_kw: passed to :func:`render_points`.

    Returns:
        ``(H, W, 3)`` uint8 figure.
    """
    lab = np.asarray(as_numpy(labels), dtype=np.int64).reshape(-1)
    cols, legend = labels_to_colors(lab, category, None)
    if not legend and label_names is not None:
        pal = palette(max(int(lab.max()) + 1, len(label_names)))
        legend = [
            (label_names[i], tuple(float(v) for v in pal[i]))
            for i in np.unique(lab)
            if i < len(label_names)
        ]
    img = render_points(
        points,
        cols,
        width=width,
        height=height,
        point_size=point_size,
        depth_cue=depth_cue,
        **render_kw,
    )
    fig = compose([Panel(img)], legend=legend, title=title)
    if path is not None:
        save_png(path, fig)
    return fig


def render_comparison(
    points: np.ndarray,
    target: np.ndarray,
    pred: np.ndarray,
    *,
    category: int | str | None = None,
    label_names: Sequence[str] | None = None,
    show_errors: bool = True,
    title: str = "",
    width: int = 400,
    height: int = 400,
    point_size: float = 5.0,
    depth_cue: float = 0.5,
    **render_kw: Any,
) -> np.ndarray:
    """Ground truth and prediction side by side, plus a panel with wrong points in red.

    Args:
        points: ``(N, 3)``.
        target: ``(N,)`` true labels (part ids).
        pred: ``(N,)`` predicted labels.
        category: ShapeNetPart category (name or index): per-category part colours and a
            legend with part names.
        label_names: names of the labels for the legend when there is no category.
        show_errors: add the third panel (correct points grey, wrong points red; drawn
            flat, without the depth cue, so red always means exactly "wrong").
        title: figure title.
        width, height: size of each panel.
        depth_cue: darken far points in the label panels; ``0``: flat colours.
        render_kw: passed to :func:`render_points` (``azimuth``, ``up``, ``backend``...).

    Returns:
        ``(H, W, 3)`` uint8 figure.
    """
    target = np.asarray(as_numpy(target), dtype=np.int64).reshape(-1)
    pred = np.asarray(as_numpy(pred), dtype=np.int64).reshape(-1)
    pts = np.asarray(as_numpy(points), dtype=np.float64)
    if not (len(target) == len(pred) == len(pts)):
        raise InputError(
            f"points ({len(pts)}), target ({len(target)}) and pred "
            f"({len(pred)}) must have the same length"
        )
    num = int(max(target.max(), pred.max())) + 1
    gt_cols, legend = labels_to_colors(target, category, num)
    pred_cols, _ = labels_to_colors(pred, category, num)
    if not legend and label_names is not None:
        cols = palette(max(num, len(label_names)))
        present = np.union1d(target, pred)
        legend = [
            (label_names[i], tuple(float(v) for v in cols[i]))
            for i in present
            if i < len(label_names)
        ]
    cam = render_kw.pop("camera", None) or fit_camera(
        pts,
        width=width,
        height=height,
        **{k: render_kw.pop(k) for k in ("azimuth", "elevation", "up") if k in render_kw},
    )
    kw = dict(width=width, height=height, point_size=point_size, camera=cam, **render_kw)
    wrong = pred != target
    acc = 1.0 - wrong.mean()
    panels = [
        Panel(render_points(pts, gt_cols, depth_cue=depth_cue, **kw), "ground truth"),
        Panel(
            render_points(pts, pred_cols, depth_cue=depth_cue, **kw),
            f"prediction (accuracy {acc:.1%})",
        ),
    ]
    if show_errors:
        err_cols = np.where(wrong[:, None], np.asarray(ERROR_COLOR), np.asarray(CORRECT_COLOR))
        # Wrong points drawn last so they sit on top where points overlap.
        order = np.argsort(wrong, kind="stable")
        panels.append(
            Panel(
                render_points(pts[order], err_cols[order], **kw),
                f"errors: {int(wrong.sum())} of {len(wrong)} points",
                title_color=ERROR_COLOR if wrong.any() else "black",
            )
        )
    if show_errors:
        legend = [*legend, ("wrong", ERROR_COLOR)]
    return compose(panels, legend=legend, title=title)


def render_grid(
    clouds: Sequence[np.ndarray],
    colors: Sequence[np.ndarray | Sequence[float] | None] | None = None,
    *,
    titles: Sequence[str] | None = None,
    title_colors: Sequence[str | tuple[float, float, float]] | None = None,
    ncols: int = 4,
    legend: Sequence[tuple[str, tuple[float, float, float]]] = (),
    title: str = "",
    width: int = 256,
    height: int = 256,
    point_size: float = 4.0,
    depth_cue: float = 0.5,
    **render_kw: Any,
) -> np.ndarray:
    """Several clouds in one image, each framed by its own camera.

    Args:
        clouds: ``(N_i, 3)`` arrays.
        colors: per cloud ``(N_i, 3)`` colours, one ``(3,)`` colour, or ``None``.
        titles, title_colors: per panel.
        ncols: panels per row.
        legend, title: see :func:`compose`.
        width, height: size of each panel.
        depth_cue: darken far points (see :func:`render_points`); ``0``: flat colours.
        render_kw: passed to :func:`render_points`.

    Returns:
        ``(H, W, 3)`` uint8 image.
    """
    if not clouds:
        raise InputError("render_grid needs at least one cloud")
    colors = list(colors) if colors is not None else [None] * len(clouds)
    titles = list(titles) if titles is not None else [""] * len(clouds)
    tcols = list(title_colors) if title_colors is not None else ["black"] * len(clouds)
    if not len(colors) == len(titles) == len(tcols) == len(clouds):
        raise InputError("clouds, colors, titles and title_colors must have the same length")
    panels = [
        Panel(
            render_points(
                p,
                c,
                width=width,
                height=height,
                point_size=point_size,
                depth_cue=depth_cue,
                **render_kw,
            ),
            t,
            tc,
        )
        for p, c, t, tc in zip(clouds, colors, titles, tcols, strict=True)
    ]
    return compose(panels, ncols=ncols, legend=legend, title=title)


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an ``(H, W, 3)`` uint8 (or float ``[0, 1]``) image as PNG (atomically).

    The file carries pointea's ``Software`` text chunk, by which a later run recognises
    it as its own output (:func:`pointea.outputs.is_pointea_output`).
    """
    from matplotlib.image import imsave

    from ..files import atomic_write
    from ..outputs import PNG_SOFTWARE

    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise InputError(f"image must be (H, W, 3|4), got shape {img.shape}")
    meta = {"Software": PNG_SOFTWARE}
    return atomic_write(path, lambda f: imsave(f, img, format="png", metadata=meta))


def export_ply(
    path: str | os.PathLike,
    points: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    colors: np.ndarray | None = None,
    category: int | str | None = None,
    binary: bool = True,
) -> Path:
    """Write a cloud coloured by its labels (and keeping them as a ``label`` property).

    Colours follow :func:`part_colors` with a ``category``, else :func:`label_colors`;
    explicit ``colors`` win. Opens in open3d, MeshLab, CloudCompare and Blender.
    """
    pts = np.asarray(as_numpy(points), dtype=np.float64)
    lab = None if labels is None else np.asarray(as_numpy(labels), dtype=np.int64)
    if colors is None and lab is not None:
        colors = part_colors(lab, category) if category is not None else label_colors(lab)
    return write_ply(path, pts, colors=as_numpy(colors), labels=lab, binary=binary)
