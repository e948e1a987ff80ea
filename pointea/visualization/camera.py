"""The camera shared by both render backends: framing a cloud and projecting it to pixels.

:func:`fit_camera` frames a cloud's bounding sphere from an azimuth / elevation;
:func:`project_points` follows the open3d renderer's conventions (OpenGL look-at,
vertical field of view), so the numpy splatter and open3d put a point on the same pixel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .colors import as_numpy

__all__ = ["Camera", "fit_camera", "project_points"]


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
    pts = np.asarray(as_numpy(points), dtype=np.float64).reshape(-1, 3)
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
    pts = np.asarray(as_numpy(points), dtype=np.float64).reshape(-1, 3)
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
