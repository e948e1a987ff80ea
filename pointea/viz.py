"""Seeing point clouds and predictions: off-screen renders, comparison figures, PLY export.

Rendering goes through open3d's Filament ``OffscreenRenderer`` (headless, on the CPU
through Mesa where there is no GPU), imported lazily: ``import pointea`` never loads
open3d. When open3d cannot render (not installed, no GL libraries) a small numpy
point splatter with the same camera takes over (``backend="auto"``), so a figure can
always be drawn.

Two open3d facts shape this module:

* at most one ``OffscreenRenderer`` may be alive at a time (two abort the process at
  exit), so a single renderer is kept and reused; :func:`release_renderer` frees it;
* the renderer's engine prints lines to stdout when it starts, so file descriptor 1 is
  pointed at ``/dev/null`` while it is created.

Colours are flat (unlit material), so every rendered point shows exactly its label's
palette colour. Figures (panels, titles, legends) are composed with matplotlib's Agg
canvas into one ``(H, W, 3)`` uint8 array.

Typical use::

    img = render_points(pos, part_colors(pred, "Chair"), width=480, height=480)
    save_png("chair.png", img)
    fig = render_comparison(pos, gt, pred, category="Chair")   # GT | prediction | errors
    export_ply("chair.ply", pos, labels=pred, category="Chair")
"""

from __future__ import annotations

import colorsys
import contextlib
import math
import os
import sys
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .datasets.shapenetpart import category_index
from .errors import InputError
from .io import resample_indices, write_ply
from .o3d import import_open3d, quiet_stdout

__all__ = [
    "PALETTE",
    "ERROR_COLOR",
    "CORRECT_COLOR",
    "BACKGROUND",
    "Camera",
    "Panel",
    "palette",
    "label_colors",
    "part_colors",
    "part_legend",
    "fit_camera",
    "project_points",
    "render_points",
    "render_labels",
    "release_renderer",
    "compose",
    "render_comparison",
    "render_grid",
    "render_prediction_grid",
    "save_png",
    "export_ply",
    "show",
    "has_display",
]

# A fixed palette chosen for contrast on white; no pure red (kept for errors).
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


def _numpy(value: Any) -> Any:
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
    lab = np.asarray(_numpy(labels), dtype=np.int64).reshape(-1)
    if lab.size and lab.min() < 0:
        raise InputError(f"labels must be non-negative, got {int(lab.min())}")
    n = int(num_labels if num_labels is not None else (lab.max() + 1 if lab.size else 1))
    return palette(max(n, int(lab.max()) + 1 if lab.size else 1))[lab]


# --------------------------------------------------------------------------------------
# ShapeNetPart categories and part names (the table lives in pointea.datasets)
# --------------------------------------------------------------------------------------
def _part_table() -> tuple[list[str], list[list[int]], list[str]]:
    """``(categories, CATEGORY_PARTS, PART_NAMES)`` from pointea.datasets.shapenetpart."""
    from .datasets import shapenetpart as snp

    cats = snp.SHAPENET_CATEGORIES
    names = [c if isinstance(c, str) else c[0] for c in cats]
    return names, [list(p) for p in snp.CATEGORY_PARTS], list(snp.PART_NAMES)


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
    lab = np.asarray(_numpy(labels), dtype=np.int64).reshape(-1)
    if category is None:
        return label_colors(lab)
    _, parts_table, _ = _part_table()
    parts = parts_table[category_index(category)]
    top = max(int(lab.max()) + 1 if lab.size else 0, max(parts) + 1)
    lut = np.full(top, -1, dtype=np.int64)
    lut[parts] = np.arange(len(parts))
    others = np.setdiff1d(np.arange(top), parts)
    lut[others] = len(parts) + np.arange(len(others))
    return palette(int(lut.max()) + 1)[lut[lab]]


def part_legend(category: int | str) -> list[tuple[str, tuple[float, float, float]]]:
    """``[(part name, colour), ...]`` for a category's parts, matching :func:`part_colors`."""
    _, parts_table, part_names = _part_table()
    parts = parts_table[category_index(category)]
    cols = palette(len(parts))
    return [(part_names[p], tuple(float(x) for x in cols[k])) for k, p in enumerate(parts)]


# --------------------------------------------------------------------------------------
# camera
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Camera:
    """A pinhole camera looking from ``eye`` at ``center``; ``fov`` is vertical, degrees."""

    eye: tuple[float, float, float]
    center: tuple[float, float, float]
    up: tuple[float, float, float] = (0.0, 1.0, 0.0)
    fov: float = 30.0

    def __repr__(self) -> str:
        f = ", ".join
        return (
            f"Camera(eye=({f(f'{v:.3g}' for v in self.eye)}), "
            f"center=({f(f'{v:.3g}' for v in self.center)}), up={self.up}, fov={self.fov})"
        )


_UP = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}


def fit_camera(
    points: np.ndarray,
    *,
    width: int = 640,
    height: int = 480,
    azimuth: float = 45.0,
    elevation: float = 25.0,
    up: str | Sequence[float] = "y",
    fov: float = 30.0,
    margin: float = 1.08,
) -> Camera:
    """A camera that frames the whole cloud, seen from ``azimuth`` / ``elevation`` degrees.

    The object's bounding sphere (centred on the bounding-box centre) is kept inside
    both the vertical and horizontal field of view, with ``margin`` to spare.

    Args:
        points: ``(N, 3)``.
        width, height: image size (the aspect ratio decides the horizontal FOV).
        azimuth: rotation about the up axis, degrees (0 looks along -z for y-up).
        elevation: height above the horizontal plane, degrees.
        up: ``"x" | "y" | "z"`` or a vector (ShapeNet and ModelNet40 HDF5 are y-up).
        fov: vertical field of view, degrees.
        margin: >= 1 leaves a border around the object.
    """
    pts = np.asarray(_numpy(points), dtype=np.float64).reshape(-1, 3)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    center = (lo + hi) / 2
    radius = float(np.sqrt(((pts - center) ** 2).sum(axis=1)).max())
    radius = radius if radius > 0 else 1.0
    upv = np.asarray(_UP[up] if isinstance(up, str) else up, dtype=np.float64)
    upv = upv / np.linalg.norm(upv)
    # An orthonormal frame (a, b, upv): azimuth turns in the a-b plane.
    a = np.cross(upv, [0.0, 0.0, 1.0] if abs(upv[2]) < 0.9 else [1.0, 0.0, 0.0])
    a /= np.linalg.norm(a)
    b = np.cross(a, upv)
    az, el = math.radians(azimuth), math.radians(elevation)
    direction = math.cos(el) * (math.sin(az) * a + math.cos(az) * b) + math.sin(el) * upv
    half_v = math.radians(fov) / 2
    half_h = math.atan(math.tan(half_v) * width / height)
    dist = radius / math.sin(min(half_v, half_h)) * margin
    eye = center + direction * dist
    return Camera(tuple(eye.tolist()), tuple(center.tolist()), tuple(upv.tolist()), fov)


def _view_matrix(cam: Camera) -> np.ndarray:
    eye, center, up = (np.asarray(v, np.float64) for v in (cam.eye, cam.center, cam.up))
    f = center - eye
    f /= np.linalg.norm(f)
    s = np.cross(f, up)
    if np.linalg.norm(s) < 1e-9:  # looking along the up axis
        s = np.cross(f, [1.0, 0.0, 0.0] if abs(f[0]) < 0.9 else [0.0, 0.0, 1.0])
    s /= np.linalg.norm(s)
    u = np.cross(s, f)
    m = np.eye(4)
    m[0, :3], m[1, :3], m[2, :3] = s, u, -f
    m[:3, 3] = -m[:3, :3] @ eye
    return m


def project_points(
    points: np.ndarray, camera: Camera, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project points to pixels with :class:`Camera` (the renderer's conventions).

    Returns:
        ``(col (N,) float, row (N,) float, depth (N,) float)``: pixel coordinates (column
        from the left, row from the top) and distance along the viewing axis.
    """
    pts = np.asarray(_numpy(points), dtype=np.float64).reshape(-1, 3)
    cam = (_view_matrix(camera) @ np.c_[pts, np.ones(len(pts))].T).T[:, :3]
    depth = -cam[:, 2]
    fy = 1.0 / math.tan(math.radians(camera.fov) / 2)
    fx = fy * height / width
    with np.errstate(divide="ignore", invalid="ignore"):
        x_ndc = fx * cam[:, 0] / depth
        y_ndc = fy * cam[:, 1] / depth
    col = (x_ndc + 1) / 2 * width
    row = (1 - y_ndc) / 2 * height
    return col, row, depth


# --------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------
class _RendererHolder:
    """The one open3d OffscreenRenderer of the process (created lazily, reused)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.renderer: Any = None
        self.size: tuple[int, int] | None = None
        self.failed: str | None = None

    def get(self, width: int, height: int) -> Any:
        if self.renderer is not None and self.size == (width, height):
            return self.renderer
        self.release()  # never two alive at once
        o3d = import_open3d()
        with quiet_stdout():
            self.renderer = o3d.visualization.rendering.OffscreenRenderer(width, height)
        self.size = (width, height)
        return self.renderer

    def release(self) -> None:
        if self.renderer is not None:
            r, self.renderer, self.size = self.renderer, None, None
            with contextlib.suppress(Exception):  # freeing must not raise
                r.scene.clear_geometry()
            del r
            import gc

            gc.collect()


_HOLDER = _RendererHolder()


def release_renderer() -> None:
    """Free the shared open3d renderer (the next render creates a new one)."""
    with _HOLDER.lock:
        _HOLDER.release()


def _check_cloud(
    points: np.ndarray, colors: np.ndarray | Sequence[float] | None
) -> tuple[np.ndarray, np.ndarray]:
    pts = np.asarray(_numpy(points), dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0:
        raise InputError(f"points must be a non-empty (N, 3) array, got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise InputError("points hold NaN or infinite coordinates")
    if colors is None:
        cols = np.tile(PALETTE[0], (len(pts), 1))
    else:
        cols = np.asarray(_numpy(colors), dtype=np.float64)
        if cols.ndim == 1 and cols.shape == (3,):
            cols = np.tile(cols, (len(pts), 1))
        if cols.shape != pts.shape:
            raise InputError(f"colors must be (N, 3) = {pts.shape} or (3,), got {cols.shape}")
        if cols.size and cols.max() > 1.0:
            cols = cols / 255.0
    return pts, np.clip(cols, 0.0, 1.0)


def render_points(
    points: np.ndarray,
    colors: np.ndarray | Sequence[float] | None = None,
    *,
    width: int = 640,
    height: int = 480,
    point_size: float = 5.0,
    background: Sequence[float] = BACKGROUND,
    camera: Camera | None = None,
    azimuth: float = 45.0,
    elevation: float = 25.0,
    up: str | Sequence[float] = "y",
    backend: str | None = None,
) -> np.ndarray:
    """Render a coloured point cloud off-screen.

    Args:
        points: ``(N, 3)`` coordinates.
        colors: ``(N, 3)`` (or one ``(3,)``) colours in ``[0, 1]`` (or ``0..255``).
        width, height: image size in pixels.
        point_size: point diameter in pixels.
        background: RGB in ``[0, 1]``.
        camera: a :class:`Camera`; by default :func:`fit_camera` frames the cloud from
            ``azimuth`` / ``elevation`` with ``up``.
        backend: ``"open3d"`` (Filament), ``"numpy"`` (a z-buffered point splatter,
            no GL needed) or ``"auto"`` (open3d, else numpy with a warning). ``None``
            reads the ``POINTEA_RENDER_BACKEND`` environment variable (default
            ``"auto"``), e.g. to avoid open3d on a machine whose GL stack crashes.

    Returns:
        ``(height, width, 3)`` uint8 RGB image.
    """
    if width < 8 or height < 8:
        raise InputError(f"image size must be at least 8x8, got {width}x{height}")
    if backend is None:
        backend = os.environ.get("POINTEA_RENDER_BACKEND", "auto").strip().lower() or "auto"
    if backend not in ("auto", "open3d", "numpy"):
        raise InputError(f"backend must be 'auto', 'open3d' or 'numpy', got {backend!r}")
    pts, cols = _check_cloud(points, colors)
    cam = camera or fit_camera(
        pts, width=width, height=height, azimuth=azimuth, elevation=elevation, up=up
    )
    bg = tuple(float(c) for c in background)
    if backend in ("auto", "open3d") and _HOLDER.failed is None:
        try:
            return _render_open3d(pts, cols, width, height, point_size, bg, cam)
        except (ImportError, RuntimeError, OSError) as exc:
            if backend == "open3d":
                raise RuntimeError(f"open3d off-screen rendering failed: {exc}") from exc
            _HOLDER.failed = str(exc)
            warnings.warn(
                f"open3d cannot render here ({exc}); using the numpy point renderer instead",
                stacklevel=2,
            )
    elif backend == "open3d":
        raise RuntimeError(f"open3d off-screen rendering failed earlier: {_HOLDER.failed}")
    return _render_numpy(pts, cols, width, height, point_size, bg, cam)


def _render_open3d(
    pts: np.ndarray,
    cols: np.ndarray,
    width: int,
    height: int,
    point_size: float,
    bg: tuple[float, ...],
    cam: Camera,
) -> np.ndarray:
    o3d = import_open3d()
    with _HOLDER.lock:
        r = _HOLDER.get(width, height)
        scene = r.scene
        scene.clear_geometry()
        scene.set_background([*bg, 1.0])
        scene.view.set_post_processing(False)  # no tone mapping: exact label colours
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
        pcd.colors = o3d.utility.Vector3dVector(cols)
        mat = o3d.visualization.rendering.MaterialRecord()
        mat.shader = "defaultUnlit"
        mat.point_size = float(point_size)
        scene.add_geometry("cloud", pcd, mat)
        r.setup_camera(cam.fov, np.asarray(cam.center), np.asarray(cam.eye), np.asarray(cam.up))
        img = np.asarray(r.render_to_image())
        scene.clear_geometry()
    if img.shape[:2] != (height, width):
        raise RuntimeError(f"renderer returned an image of {img.shape}, expected {(height, width)}")
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def _render_numpy(
    pts: np.ndarray,
    cols: np.ndarray,
    width: int,
    height: int,
    point_size: float,
    bg: tuple[float, ...],
    cam: Camera,
) -> np.ndarray:
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[:] = np.round(np.asarray(bg) * 255).astype(np.uint8)
    col, row, depth = project_points(pts, cam, width, height)
    ok = np.isfinite(col) & np.isfinite(row) & (depth > 0)
    order = np.argsort(-depth[ok], kind="stable")  # far first; near points overwrite
    cu, rv = col[ok][order], row[ok][order]
    c8 = np.round(cols[ok][order] * 255).astype(np.uint8)
    rad = max(float(point_size) / 2, 0.5)
    span = int(math.ceil(rad))
    for dy in range(-span, span + 1):
        for dx in range(-span, span + 1):
            if dx * dx + dy * dy > rad * rad + 0.25:
                continue
            u = np.floor(cu).astype(np.int64) + dx
            v = np.floor(rv).astype(np.int64) + dy
            inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
            img[v[inside], u[inside]] = c8[inside]
    return img


# --------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------
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
    pixel for pixel, never resampled.

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
                p.title,
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


def _colors_for(
    labels: np.ndarray, category: int | str | None, num_labels: int | None
) -> tuple[np.ndarray, list[tuple[str, tuple[float, float, float]]]]:
    if category is not None:
        return part_colors(labels, category), part_legend(category)
    return label_colors(labels, num_labels), []


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
        render_kw: passed to :func:`render_points`.

    Returns:
        ``(H, W, 3)`` uint8 figure.
    """
    lab = np.asarray(_numpy(labels), dtype=np.int64).reshape(-1)
    cols, legend = _colors_for(lab, category, None)
    if not legend and label_names is not None:
        pal = palette(max(int(lab.max()) + 1, len(label_names)))
        legend = [
            (label_names[i], tuple(float(v) for v in pal[i]))
            for i in np.unique(lab)
            if i < len(label_names)
        ]
    img = render_points(
        points, cols, width=width, height=height, point_size=point_size, **render_kw
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
        show_errors: add the third panel (correct points grey, wrong points red).
        title: figure title.
        width, height: size of each panel.
        render_kw: passed to :func:`render_points` (``azimuth``, ``up``, ``backend``...).

    Returns:
        ``(H, W, 3)`` uint8 figure.
    """
    target = np.asarray(_numpy(target), dtype=np.int64).reshape(-1)
    pred = np.asarray(_numpy(pred), dtype=np.int64).reshape(-1)
    pts = np.asarray(_numpy(points), dtype=np.float64)
    if not (len(target) == len(pred) == len(pts)):
        raise InputError(
            f"points ({len(pts)}), target ({len(target)}) and pred "
            f"({len(pred)}) must have the same length"
        )
    num = int(max(target.max(), pred.max())) + 1
    gt_cols, legend = _colors_for(target, category, num)
    pred_cols, _ = _colors_for(pred, category, num)
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
        Panel(render_points(pts, gt_cols, **kw), "ground truth"),
        Panel(render_points(pts, pred_cols, **kw), f"prediction (accuracy {acc:.1%})"),
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
            render_points(p, c, width=width, height=height, point_size=point_size, **render_kw),
            t,
            tc,
        )
        for p, c, t, tc in zip(clouds, colors, titles, tcols, strict=True)
    ]
    return compose(panels, ncols=ncols, legend=legend, title=title)


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an ``(H, W, 3)`` uint8 (or float ``[0, 1]``) image as PNG (atomically)."""
    from matplotlib.image import imsave

    from .serialization import atomic_write

    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise InputError(f"image must be (H, W, 3|4), got shape {img.shape}")
    return atomic_write(path, lambda f: imsave(f, img, format="png"))


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
    pts = np.asarray(_numpy(points), dtype=np.float64)
    lab = None if labels is None else np.asarray(_numpy(labels), dtype=np.int64)
    if colors is None and lab is not None:
        colors = part_colors(lab, category) if category is not None else label_colors(lab)
    return write_ply(path, pts, colors=_numpy(colors), labels=lab, binary=binary)


# --------------------------------------------------------------------------------------
# interactive
# --------------------------------------------------------------------------------------
def has_display() -> bool:
    """Whether an interactive window can open (Linux needs DISPLAY or WAYLAND_DISPLAY)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def show(
    points: np.ndarray,
    colors: np.ndarray | None = None,
    *,
    labels: np.ndarray | None = None,
    category: int | str | None = None,
    window_name: str = "pointea",
    point_size: float = 5.0,
) -> None:
    """Open an interactive open3d window (rotate with the mouse; close it to return).

    Args:
        points: ``(N, 3)``.
        colors: ``(N, 3)`` colours; or give ``labels`` (and a ShapeNetPart ``category``)
            to colour by label as in the off-screen figures.

    Raises:
        RuntimeError: no display (use :func:`render_points` + :func:`save_png` instead).
    """
    if not has_display():
        raise RuntimeError(
            "no display available (DISPLAY is not set): render to a PNG "
            "with render_points/save_png instead"
        )
    if colors is None and labels is not None:
        colors = _colors_for(np.asarray(_numpy(labels), dtype=np.int64), category, None)[0]
    o3d = import_open3d()
    pts, cols = _check_cloud(points, colors)
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
    pcd.colors = o3d.utility.Vector3dVector(cols)
    vis = o3d.visualization.Visualizer()
    if not vis.create_window(window_name=window_name, width=960, height=720):
        raise RuntimeError("open3d could not open a window on this display")
    vis.add_geometry(pcd)
    vis.get_render_option().point_size = float(point_size)
    vis.get_render_option().background_color = np.asarray(BACKGROUND)
    vis.run()
    vis.destroy_window()


# --------------------------------------------------------------------------------------
# model predictions on dataset shapes (used by the demo and pointea-predict --render-grid)
# --------------------------------------------------------------------------------------
def render_prediction_grid(
    model: Any,
    dataset: Sequence[Any],
    path: str | os.PathLike | None = None,
    *,
    num_shapes: int = 8,
    indices: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    num_points: int | None = None,
    ncols: int = 4,
    width: int = 256,
    height: int = 256,
    device: Any = "cpu",
    seed: int = 0,
    title: str = "",
    summary: bool = True,
    **render_kw: Any,
) -> np.ndarray:
    """Run a model on dataset shapes and render its predictions as one grid image.

    Classification: points in one colour, titled ``pred (prob)`` in green when right,
    red with the true class when wrong. Part segmentation (samples carry ``category``):
    points coloured by predicted part (restricted to the shape's category), wrong points
    in red, titled with the category and shape IoU.

    Args:
        model: a pointea classifier or segmenter (eval mode is set here, then restored).
        dataset: indexable, yielding ``Data(pos, y[, category])`` as in the data contract.
        path: where to write the PNG (``None``: only return the image).
        num_shapes: how many shapes (spread evenly over the dataset, or seeded random
            when ``seed`` is not ``None``); ignored with ``indices``.
        class_names: names of the classes (classification titles).
        num_points: run on this many points of each shape (seeded random subset; the
            training number of points), ``None`` for all.
        device: where to run the model.
        title: figure title.
        summary: append the tally to the title (``5 of 8 right`` / ``mean shape IoU``).

    Returns:
        ``(H, W, 3)`` uint8 image.
    """
    import torch

    from .metrics import predict_parts, shape_ious

    n = len(dataset)
    if n == 0:
        raise InputError("the dataset is empty")
    if indices is None:
        k = min(num_shapes, n)
        indices = np.random.default_rng(seed).choice(n, k, replace=False).tolist()
    clouds, colors, titles, tcolors = [], [], [], []
    legend: list[tuple[str, tuple[float, float, float]]] = []
    scores: list[float] = []  # 1/0 per shape (classification) or shape IoU (segmentation)
    segmentation = False
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        for i in indices:
            data = dataset[int(i)]
            n_all = data.pos.size(0)
            keep = (
                torch.arange(n_all)
                if num_points is None or num_points >= n_all
                else torch.from_numpy(resample_indices(n_all, num_points, seed))
            )
            pos = data.pos[keep].to(device, torch.float32)
            x = data.x[keep].to(device) if getattr(data, "x", None) is not None else None
            with torch.no_grad():
                if getattr(data, "category", None) is not None:
                    cat = data.category.reshape(-1)[:1].to(device)
                    ci = int(cat.item())
                    parts_table = _part_table()[1]
                    logits = model(pos, cat, None, x)
                    pred_t = predict_parts(logits, cat, parts_table)
                    true_t = data.y.reshape(-1)[keep].to(pred_t.device)
                    iou = float(shape_ious(pred_t, true_t, cat, parts_table)[0])
                    scores.append(iou)
                    pred, true = pred_t.cpu().numpy(), true_t.cpu().numpy()
                    cols = part_colors(pred, ci)
                    cols[pred != true] = ERROR_COLOR
                    clouds.append(pos.cpu().numpy())
                    colors.append(cols)
                    titles.append(f"{_part_table()[0][ci]}  IoU {iou:.2f}")
                    tcolors.append("black")
                    legend = [("wrong part", ERROR_COLOR)]
                    segmentation = True
                else:
                    logits = model(pos, None, x)
                    prob = torch.softmax(logits.float().reshape(-1), dim=0)
                    p, c = float(prob.max()), int(prob.argmax())
                    true = int(data.y.reshape(-1)[0])
                    ok = c == true
                    scores.append(float(ok))
                    clouds.append(pos.cpu().numpy())
                    colors.append(PALETTE[0])
                    titles.append(
                        f"{_name(class_names, c)} ({p:.0%})"
                        if ok
                        else f"{_name(class_names, c)} ({p:.0%}), true {_name(class_names, true)}"
                    )
                    tcolors.append((0.1, 0.5, 0.1) if ok else ERROR_COLOR)
    finally:
        model.train(was_training)
    if summary and scores:
        tally = (
            f"mean shape IoU {np.mean(scores):.2f}"
            if segmentation
            else f"{int(sum(scores))} of {len(scores)} right"
        )
        title = f"{title}: {tally}" if title else tally
    img = render_grid(
        clouds,
        colors,
        titles=titles,
        title_colors=tcolors,
        ncols=ncols,
        legend=legend,
        title=title,
        width=width,
        height=height,
        **render_kw,
    )
    if path is not None:
        save_png(path, img)
    return img


def _name(names: Sequence[str] | None, i: int) -> str:
    return names[i] if names is not None and 0 <= i < len(names) else str(i)
