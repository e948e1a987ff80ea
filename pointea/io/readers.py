"""The public readers: any supported file to a :class:`PointCloud` or :class:`Mesh`."""

from __future__ import annotations

import os
import struct
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .colors import ColourScale, check_colour_scale
from .files import fail
from .geometry import check_points, sample_surface
from .gltf import read_gltf
from .hdf5 import read_h5_entry
from .inputs import parse_input_spec
from .obj import read_obj
from .off import read_off
from .pcd import read_pcd
from .ply import read_ply
from .stl import read_stl
from .text import read_text_cloud
from .types import (
    HDF5_EXTENSIONS,
    MESH_EXTENSIONS,
    SUPPORTED_EXTENSIONS,
    InputSpec,
    Mesh,
    PointCloud,
)

__all__ = ["read_point_cloud", "read_mesh", "load_points"]


def check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        shown = suffix or "(none)"
        raise fail(
            path, f"unsupported file extension {shown}; supported: {' '.join(SUPPORTED_EXTENSIONS)}"
        )
    return suffix


def guard_parse(path: Path, fn: Any) -> Any:
    """Run a parser ``fn(path)``; turn any unexpected low-level failure (and running out
    of memory) into a DataError naming the file."""
    try:
        return fn(path)
    except DataError:
        raise
    except MemoryError:
        raise fail(path, "too large to read into memory") from None
    except (
        ValueError,
        IndexError,
        KeyError,
        TypeError,
        OverflowError,
        struct.error,
        UnicodeError,
        OSError,
    ) as exc:
        raise fail(
            path, f"corrupt or unsupported content ({type(exc).__name__}: {str(exc)[:120]})"
        ) from exc


def read_point_cloud(
    path: str | os.PathLike, *, check: bool = True, colour_scale: ColourScale = "auto"
) -> PointCloud:
    """Read a point cloud file (``.xyz .txt .pts .pcd .ply``); a PLY mesh gives its vertices.

    Args:
        path: the file.
        check: validate the coordinates (non-empty, finite, within float32) with
            :func:`check_points`.
        colour_scale: the scale of the file's colours: ``"auto"`` (decided from the
            data type and range, :func:`~pointea.io.colors.unit_colors`), ``"1"`` or
            ``"255"``.

    Raises:
        DataError: the file is missing, unreadable, malformed or (with ``check``) holds
            no usable points. The message starts with the file name.
    """
    path = Path(path)
    suffix = check_suffix(path)
    colour_scale = check_colour_scale(colour_scale)
    if suffix in (".xyz", ".txt", ".pts"):
        cloud = guard_parse(path, partial(read_text_cloud, colour_scale=colour_scale))
    elif suffix == ".pcd":
        cloud = guard_parse(path, partial(read_pcd, colour_scale=colour_scale))
    elif suffix == ".ply":
        cloud = guard_parse(path, partial(read_ply, colour_scale=colour_scale))[0]
    else:
        raise fail(path, f"{suffix} is a mesh format: use read_mesh or load_points")
    if check:
        check_points(cloud.points, str(path), line_of=cloud.line_of)
    return cloud


def read_mesh(path: str | os.PathLike, *, check: bool = True) -> Mesh:
    """Read a triangle mesh (``.off .obj .stl .ply``); polygons are fanned into triangles.

    Raises:
        DataError: the file is missing, malformed, has no faces, or (with ``check``) has
            non-finite or out-of-range vertex coordinates.
    """
    path = Path(path)
    suffix = check_suffix(path)
    if suffix == ".off":
        mesh = guard_parse(path, read_off)
    elif suffix == ".obj":
        mesh = guard_parse(path, read_obj)
    elif suffix == ".stl":
        mesh = guard_parse(path, read_stl)
    elif suffix in (".glb", ".gltf"):
        mesh = guard_parse(path, read_gltf)
    elif suffix == ".ply":
        mesh = guard_parse(path, partial(read_ply, mesh_colors=False))[1]
        if mesh is None:
            raise fail(path, "the PLY file has no faces (it is a point cloud)")
    else:
        raise fail(path, f"{suffix} is not a mesh format ({' '.join(MESH_EXTENSIONS)})")
    if check:
        check_points(mesh.vertices, str(path), what="vertex")
    return mesh


def load_points(
    spec: str | os.PathLike | InputSpec,
    num_points: int = 2048,
    *,
    seed: int = 0,
    drop_nonfinite: bool = False,
    surface: bool = True,
    colour_scale: ColourScale = "auto",
) -> PointCloud:
    """Read any supported input as a point cloud.

    Meshes (``.off .obj .stl``, and ``.ply`` with faces) are sampled on their surface
    (area-weighted, seeded) with ``num_points`` points; clouds are returned as they are
    (use :func:`prepare_points` to normalise and resample them).

    Args:
        spec: a path, ``file.h5:INDEX``, or an :class:`InputSpec`.
        num_points: points to sample from a mesh surface.
        seed: seed of the surface sampling.
        drop_nonfinite: drop points with NaN / inf coordinates (with a warning) instead
            of raising.
        surface: ``False`` uses a PLY mesh's vertices instead of sampling its surface.
        colour_scale: the scale of the file's colours (:func:`read_point_cloud`).

    Raises:
        DataError: naming the input and the problem.
    """
    spec = spec if isinstance(spec, InputSpec) else parse_input_spec(spec)
    path = spec.path
    suffix = check_suffix(path)
    name = str(spec)
    if suffix in HDF5_EXTENSIONS:
        if spec.index is None:
            raise fail(path, "name an entry of the HDF5 file: FILE.h5:INDEX or FILE.h5#INDEX")
        cloud = read_h5_entry(path, spec.index)
    elif suffix == ".ply":
        cloud, mesh = guard_parse(
            path, partial(read_ply, colour_scale=colour_scale, mesh_colors=not surface)
        )
        if mesh is not None and surface:
            check_points(mesh.vertices, name, what="vertex")
            pts, nrm = sample_surface(mesh, num_points, seed=seed)
            cloud = PointCloud(pts, normals=nrm, source=name, meta={"surface_sampled": True})
    elif suffix in MESH_EXTENSIONS:
        mesh = read_mesh(path)
        pts, nrm = sample_surface(mesh, num_points, seed=seed)
        cloud = PointCloud(pts, normals=nrm, source=name, meta={"surface_sampled": True})
    else:
        cloud = read_point_cloud(path, check=False, colour_scale=colour_scale)
    cloud.source = name
    if drop_nonfinite:
        keep = np.all(np.isfinite(cloud.points), axis=1)
        if not keep.all():
            warnings.warn(
                f"{name}: dropped {int((~keep).sum())} of {len(keep)} points with "
                f"NaN/inf coordinates",
                stacklevel=2,
            )
            cloud.subset(keep)
    try:
        check_points(cloud.points, name, line_of=cloud.line_of)
    except DataError as exc:
        if "NaN or infinite" in str(exc) and not drop_nonfinite:
            raise DataError(
                f"{exc} (drop_nonfinite=True, or pointea-predict "
                f"--drop-nonfinite, skips such points)"
            ) from None
        raise
    return cloud
