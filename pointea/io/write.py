"""Writing point clouds as PLY."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["write_ply"]


def write_ply(
    path: str | os.PathLike,
    points: np.ndarray,
    *,
    colors: np.ndarray | None = None,
    normals: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    binary: bool = True,
) -> Path:
    """Write a point cloud as PLY (readable by open3d, MeshLab, CloudCompare, Blender).

    Args:
        path: destination (written atomically: temporary file, then rename).
        points: ``(N, 3)`` coordinates (stored as float32).
        colors: ``(N, 3)`` floats in ``[0, 1]`` or uint8 ``0..255`` (stored as uchar
            ``red green blue``).
        normals: ``(N, 3)`` (stored as ``nx ny nz``).
        labels: ``(N,)`` integers (stored as int ``label``).
        binary: binary little-endian (default) or ASCII.

    Returns:
        the path written.
    """
    from ..files import atomic_write

    pts = np.asarray(points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise InputError(f"points must be (N, 3), got shape {tuple(pts.shape)}")
    n = len(pts)
    fields: list[tuple[str, str]] = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    cols: dict[str, np.ndarray] = {"x": pts[:, 0], "y": pts[:, 1], "z": pts[:, 2]}
    if normals is not None:
        nrm = np.asarray(normals, dtype=np.float32).reshape(n, 3)
        fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
        cols.update(nx=nrm[:, 0], ny=nrm[:, 1], nz=nrm[:, 2])
    if colors is not None:
        c = np.asarray(colors)
        if c.dtype != np.uint8:
            c = np.clip(np.round(np.asarray(c, np.float64) * 255.0), 0, 255).astype(np.uint8)
        c = c.reshape(n, 3)
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
        cols.update(red=c[:, 0], green=c[:, 1], blue=c[:, 2])
    if labels is not None:
        fields.append(("label", "<i4"))
        cols["label"] = np.asarray(labels).reshape(n).astype(np.int32)
    ply_type = {"<f4": "float", "u1": "uchar", "<i4": "int"}
    head = [
        "ply",
        f"format {'binary_little_endian' if binary else 'ascii'} 1.0",
        "comment written by pointea",
        f"element vertex {n}",
    ]
    head += [f"property {ply_type[t]} {name}" for name, t in fields]
    head.append("end_header")
    header = ("\n".join(head) + "\n").encode("ascii")
    rec = np.empty(n, dtype=np.dtype(fields))
    for name, _ in fields:
        rec[name] = cols[name]

    def write(f: Any) -> None:
        f.write(header)
        if binary:
            f.write(rec.tobytes())
        else:
            fmt = " ".join("%d" if t != "<f4" else "%.7g" for _, t in fields)
            table = np.column_stack([cols[name].astype(np.float64) for name, _ in fields])
            body = "\n".join(fmt % tuple(row) for row in table)
            f.write(body.encode("ascii") + (b"\n" if n else b""))

    return atomic_write(path, write)
