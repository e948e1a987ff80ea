"""Containers the readers return (:class:`PointCloud`, :class:`Mesh`), the input spec,
and the file extensions pointea reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CLOUD_EXTENSIONS",
    "MESH_EXTENSIONS",
    "HDF5_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "PointCloud",
    "Mesh",
    "InputSpec",
]

CLOUD_EXTENSIONS: tuple[str, ...] = (".xyz", ".txt", ".pts", ".pcd", ".ply")
MESH_EXTENSIONS: tuple[str, ...] = (".off", ".obj", ".stl", ".ply", ".glb", ".gltf")
HDF5_EXTENSIONS: tuple[str, ...] = (".h5", ".hdf5")
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(
    sorted(set(CLOUD_EXTENSIONS + MESH_EXTENSIONS + HDF5_EXTENSIONS))
)


@dataclass(eq=False)
class PointCloud:
    """Points read from a file, with whatever per-point extras the file carried.

    Args:
        points: ``(N, 3)`` float64 coordinates.
        normals: ``(N, 3)`` float64 or ``None``.
        colors: ``(N, 3)`` float64 in ``[0, 1]`` or ``None``.
        labels: ``(N,)`` int64 per-point labels (e.g. ShapeNetPart part ids) or ``None``.
        source: where the points came from (file name, ``file.h5:17``).
        meta: extra facts from the file, e.g. ``{"label": 3}`` for an HDF5 entry's class
            or category, ``{"surface_sampled": True}`` for a sampled mesh.
        line_of: maps a point's index to the 1-based line of the file that holds it
            (text formats; ``None`` otherwise), so messages name the file's own lines.
    """

    points: np.ndarray
    normals: np.ndarray | None = None
    colors: np.ndarray | None = None
    labels: np.ndarray | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    line_of: Callable[[int], int] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def __repr__(self) -> str:
        extras = [n for n in ("normals", "colors", "labels") if getattr(self, n) is not None]
        more = f", with={'+'.join(extras)}" if extras else ""
        return f"PointCloud(num_points={len(self)}{more}, source={self.source!r})"

    def subset(self, keep: np.ndarray) -> None:
        """Keep only the points where the boolean mask ``keep`` is true (in place)."""
        kept = np.flatnonzero(keep)
        self.points = self.points[kept]
        for attr in ("normals", "colors", "labels"):
            val = getattr(self, attr)
            if val is not None:
                setattr(self, attr, val[kept])
        if self.line_of is not None:
            line_of = self.line_of
            self.line_of = lambda i: line_of(int(kept[i]))


@dataclass(eq=False)
class Mesh:
    """A triangle mesh read from a file (polygons already fanned into triangles).

    Args:
        vertices: ``(V, 3)`` float64.
        faces: ``(F, 3)`` int64 vertex indices, all in ``[0, V)``.
        source: the file it came from.
    """

    vertices: np.ndarray
    faces: np.ndarray
    source: str = ""

    def __repr__(self) -> str:
        return (
            f"Mesh(num_vertices={self.vertices.shape[0]}, num_faces={self.faces.shape[0]}, "
            f"source={self.source!r})"
        )


@dataclass(frozen=True)
class InputSpec:
    """One input named on a command line: a file, or one entry of an HDF5 file."""

    path: Path
    index: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.index}" if self.index is not None else str(self.path)
