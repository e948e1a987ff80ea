"""Off-screen rendering of coloured point clouds: open3d's Filament renderer or a numpy splatter.

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

Colours are drawn unlit, so with ``depth_cue=0`` every point shows exactly its colour.
A depth cue (``depth_cue > 0``) darkens points with their distance from the camera
(:func:`~pointea.visualization.colors.depth_shade`) before either backend draws them,
so both backends show the same shading.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from ..o3d import import_open3d, quiet_stdout
from .camera import Camera, fit_camera, project_points
from .colors import BACKGROUND, PALETTE, as_numpy, depth_shade

__all__ = ["MAX_IMAGE_SIZE", "check_cloud", "check_image_size", "release_renderer", "render_points"]

# Larger frames make Filament abort the process (seen: 20000 x 20000, exit 134).
MAX_IMAGE_SIZE = 8192


def check_image_size(width: int, height: int) -> None:
    """Raise :class:`InputError` unless ``8 <= width, height <= MAX_IMAGE_SIZE``."""
    if width < 8 or height < 8:
        raise InputError(f"image size must be at least 8x8, got {width}x{height}")
    if width > MAX_IMAGE_SIZE or height > MAX_IMAGE_SIZE:
        raise InputError(
            f"image size must be at most {MAX_IMAGE_SIZE}x{MAX_IMAGE_SIZE}, got {width}x{height}"
        )


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


def check_cloud(
    points: np.ndarray, colors: np.ndarray | Sequence[float] | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(points (N, 3), colours (N, 3))`` as float64, checked; one ``(3,)`` colour is
    repeated, ``0..255`` colours are scaled to ``[0, 1]``."""
    pts = np.asarray(as_numpy(points), dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0:
        raise InputError(f"points must be a non-empty (N, 3) array, got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise InputError("points hold NaN or infinite coordinates")
    if colors is None:
        cols = np.tile(PALETTE[0], (len(pts), 1))
    else:
        cols = np.asarray(as_numpy(colors), dtype=np.float64)
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
    depth_cue: float = 0.0,
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
        depth_cue: darken points with their distance from the camera, ``0`` (flat: exact
            colours) to ``1`` (the farthest point black); ``0.5`` reads well.

    Returns:
        ``(height, width, 3)`` uint8 RGB image.
    """
    check_image_size(width, height)
    if backend is None:
        backend = os.environ.get("POINTEA_RENDER_BACKEND", "auto").strip().lower() or "auto"
    if backend not in ("auto", "open3d", "numpy"):
        raise InputError(f"backend must be 'auto', 'open3d' or 'numpy', got {backend!r}")
    pts, cols = check_cloud(points, colors)
    cam = camera or fit_camera(
        pts, width=width, height=height, azimuth=azimuth, elevation=elevation, up=up
    )
    if depth_cue:
        cols = depth_shade(cols, project_points(pts, cam, width, height)[2], depth_cue)
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
