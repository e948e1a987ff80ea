"""Geometry on the arrays read: checks, unit-sphere normalisation, resampling, normals,
surface sampling and fan triangulation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import InputError
from .files import fail
from .types import Mesh

__all__ = [
    "check_points",
    "check_faces",
    "fan_triangulate",
    "normalize_unit_sphere",
    "resample_indices",
    "prepare_points",
    "estimate_normals",
    "sample_surface",
]

# Largest magnitude float32 can hold; a coordinate beyond it would become inf.
_F32_MAX = float(np.finfo(np.float32).max)


def check_faces(path: Path, faces: np.ndarray, num_vertices: int) -> np.ndarray:
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if faces.size and (faces.min() < 0 or faces.max() >= num_vertices):
        bad = int(faces.max()) if faces.max() >= num_vertices else int(faces.min())
        raise fail(path, f"a face refers to vertex {bad}, but the file has {num_vertices} vertices")
    return faces


def fan_triangulate(corners: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Triangulate polygons as fans ``(a,b,c), (a,c,d), ...`` (trimesh's and assimp's way).

    Args:
        corners: ``(sum(counts),)`` vertex indices of every polygon, one after the other.
        counts: ``(P,)`` corners per polygon; polygons with fewer than 3 are skipped.

    Returns:
        ``(sum(max(counts - 2, 0)), 3)`` int64 triangles, in polygon order.
    """
    corners = np.asarray(corners, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size and np.all(counts == 3):
        return corners.reshape(-1, 3)
    starts = np.cumsum(counts) - counts
    ntri = np.maximum(counts - 2, 0)
    first = np.repeat(starts, ntri)  # (T,) where each triangle's polygon starts
    local = np.arange(int(ntri.sum())) - np.repeat(np.cumsum(ntri) - ntri, ntri)
    return np.stack(
        [corners[first], corners[first + 1 + local], corners[first + 2 + local]], axis=1
    ).reshape(-1, 3)


def check_points(
    points: np.ndarray,
    source: str = "points",
    what: str = "point",
    line_of: Callable[[int], int] | None = None,
) -> None:
    """Raise :class:`DataError` unless ``points`` is a non-empty, finite ``(N, 3)`` array
    whose values fit in float32.

    Args:
        points: ``(N, 3)`` coordinates.
        source: named at the start of the message (a file name).
        what: "point" or "vertex", used in the message.
        line_of: maps a row to the 1-based line of the file holding it (text formats):
            the first bad row is named by its line, else by its 0-based index.
    """
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise fail(source, f"expected (N, 3) coordinates, got shape {tuple(pts.shape)}")
    if pts.shape[0] == 0:
        raise fail(
            source, f"the {'point cloud' if what == 'point' else 'mesh'} is empty (0 {what}s)"
        )
    finite = np.isfinite(pts).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        kind = "NaN" if np.isnan(pts[bad[0]]).any() else "infinite"
        first = int(bad[0])
        where = f"line {line_of(first)}" if line_of is not None else f"{what} index {first}"
        raise fail(
            source,
            f"{len(bad)} of {len(pts)} {what}s have NaN or infinite coordinates (first: "
            f"{where}, {kind})",
        )
    big = float(np.abs(pts).max())
    if big > _F32_MAX:
        raise fail(
            source,
            f"coordinates too large (max |value| {big:.3g} exceeds float32's {_F32_MAX:.3g})",
        )


def normalize_unit_sphere(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre on the centroid and scale so the farthest point lies on the unit sphere.

    The same normalisation as the training data (the ModelNet40 / ShapeNetPart HDF5 files
    are stored this way). Works in float64 with a pre-scaling step, so coordinates up to
    float32's limit do not overflow. A cloud with zero extent (one point, or all points
    identical) is only centred (scale 1).

    Args:
        points: ``(N, 3)`` finite coordinates, ``N >= 1``.

    Returns:
        ``(normalised (N, 3) float32, centre (3,) float64, scale float)`` with
        ``normalised = (points - centre) / scale``.
    """
    pts = np.asarray(points, dtype=np.float64)
    m = float(np.abs(pts).max()) if pts.size else 0.0
    m = m if m > 0 else 1.0
    p = pts / m
    c = p.mean(axis=0)
    d = p - c
    r = float(np.sqrt((d * d).sum(axis=1)).max()) if len(d) else 0.0
    if not r > 0:
        r = 1.0 / m  # zero extent: keep scale 1 in original units
    return (d / r).astype(np.float32), c * m, r * m


def resample_indices(num_available: int, num_points: int, seed: int = 0) -> np.ndarray:
    """Indices choosing ``num_points`` of ``num_available`` points (seeded).

    With enough points: a random subset without repetition. With too few: every point
    once, and the rest drawn again at random (duplicates do not change a max-pooled or
    attention-pooled prediction much, and keep the batch size fixed).
    """
    if num_available < 1:
        raise InputError(f"num_available must be >= 1, got {num_available}")
    if num_points < 1:
        raise InputError(f"num_points must be >= 1, got {num_points}")
    rng = np.random.default_rng(seed)
    if num_available >= num_points:
        return np.sort(rng.choice(num_available, num_points, replace=False))
    extra = rng.choice(num_available, num_points - num_available, replace=True)
    return np.concatenate([np.arange(num_available), extra])


def prepare_points(
    points: np.ndarray, num_points: int | None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Normalise to the unit sphere, then resample to ``num_points`` (training's recipe).

    Returns:
        ``(pos (num_points, 3) float32, indices (num_points,) int64)``; ``indices`` map the
        rows of ``pos`` back to the input points (``None`` keeps every point).
    """
    check_points(points)
    pos, _, _ = normalize_unit_sphere(points)
    if num_points is None:
        return pos, np.arange(len(pos))
    idx = resample_indices(len(pos), num_points, seed)
    return pos[idx], idx


def estimate_normals(points: np.ndarray, k: int = 16, chunk: int = 2048) -> np.ndarray:
    """Unit normals from the covariance of each point's ``k`` nearest neighbours.

    Each normal is the eigenvector of the smallest eigenvalue of its neighbourhood's
    covariance, flipped to point away from the cloud's centroid (right for closed,
    roughly convex objects; a guess elsewhere). For models trained with normals
    (``in_channels=6``) on files that carry none.

    Args:
        points: ``(N, 3)`` finite coordinates, ``N >= 3``.
        k: neighbours per point (including itself), clipped to ``N``.
        chunk: rows of the distance matrix computed at once (memory ``chunk * N``).

    Returns:
        ``(N, 3)`` float64 unit normals.
    """
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    if pts.ndim != 2 or pts.shape[1] != 3 or n < 3:
        raise InputError(f"estimate_normals needs (N >= 3, 3) points, got {pts.shape}")
    k = int(min(max(k, 3), n))
    sq = (pts * pts).sum(axis=1)
    normals = np.empty_like(pts)
    for s in range(0, n, chunk):
        block = pts[s : s + chunk]
        d = sq[s : s + chunk, None] - 2 * block @ pts.T + sq[None, :]  # (b, N)
        nbr = np.argpartition(d, k - 1, axis=1)[:, :k]  # (b, k)
        local = pts[nbr] - pts[nbr].mean(axis=1, keepdims=True)  # (b, k, 3)
        cov = np.einsum("bki,bkj->bij", local, local)
        _, vecs = np.linalg.eigh(cov)  # ascending eigenvalues
        normals[s : s + chunk] = vecs[:, :, 0]
    outward = pts - pts.mean(axis=0)
    flip = (normals * outward).sum(axis=1) < 0
    normals[flip] *= -1
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def sample_surface(mesh: Mesh, num_points: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sample points uniformly on a triangle mesh's surface (area-weighted, seeded).

    Faces are drawn with probability proportional to their area, then a uniform point
    inside each drawn triangle (``sqrt`` barycentric trick).

    Args:
        mesh: the mesh.
        num_points: how many points.
        seed: seed of the generator (same seed, same points).

    Returns:
        ``(points (num_points, 3) float64, normals (num_points, 3) float64)``, the normals
        being those of the faces the points lie on.

    Raises:
        DataError: the mesh has no faces or zero surface area.
    """
    if num_points < 1:
        raise InputError(f"num_points must be >= 1, got {num_points}")
    if len(mesh.faces) == 0:
        raise fail(mesh.source, "the mesh has no faces")
    v = np.asarray(mesh.vertices, np.float64)
    scale = float(np.abs(v).max()) or 1.0
    v = v / scale  # keeps the cross products finite for huge coordinates
    tri = v[mesh.faces]  # (F, 3, 3)
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = np.sqrt((cross * cross).sum(axis=1))
    total = float(area.sum())
    if not total > 0 or not np.isfinite(total):
        raise fail(
            mesh.source,
            f"the mesh's {len(mesh.faces)} faces have zero total area "
            f"(degenerate triangles): no surface to sample",
        )
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(area / total)
    face = np.minimum(
        np.searchsorted(cdf, rng.random(num_points) * cdf[-1], side="right"), len(area) - 1
    )
    r1 = np.sqrt(rng.random(num_points))[:, None]
    r2 = rng.random(num_points)[:, None]
    t = tri[face]
    pts = (1 - r1) * t[:, 0] + r1 * (1 - r2) * t[:, 1] + r1 * r2 * t[:, 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        nrm = cross[face] / area[face, None]
    nrm = np.nan_to_num(nrm)
    return pts * scale, nrm
