"""STL meshes, ASCII and binary."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from .files import decode_text, fail, read_bytes
from .tables import all_numbers
from .types import Mesh

__all__ = ["read_stl"]


def read_stl(path: Path) -> Mesh:
    data = read_bytes(path)
    if len(data) >= 84:
        (n,) = struct.unpack_from("<I", data, 80)
        if len(data) == 84 + 50 * n or not data.lstrip().startswith(b"solid"):
            return _read_stl_binary(path, data, n)
    if not data.lstrip().startswith(b"solid"):
        raise fail(
            path,
            f"not an STL file ({len(data)} bytes: too short for binary STL and no 'solid' keyword)",
        )
    text = decode_text(path, data)
    toks = text.split()
    coords: list[str] = []
    for i, t in enumerate(toks):
        if t.lower() == "vertex":
            if i + 3 >= len(toks):
                raise fail(path, "truncated: a 'vertex' line is cut off")
            coords.extend(toks[i + 1 : i + 4])
    if not coords:
        raise fail(path, "the mesh has no facets (no 'vertex' lines)")
    if len(coords) % 9:
        raise fail(
            path,
            f"truncated or corrupt: {len(coords) // 3} vertices is not a "
            f"multiple of 3 (every facet has 3)",
        )
    try:
        v = np.array(coords, dtype=np.float64).reshape(-1, 3)
    except ValueError:
        bad = next(c for c in coords if not all_numbers([c]))
        raise fail(path, f"vertex coordinate {bad[:30]!r} is not a number") from None
    return Mesh(v, np.arange(len(v), dtype=np.int64).reshape(-1, 3), str(path))


def _read_stl_binary(path: Path, data: bytes, n: int) -> Mesh:
    if n == 0:
        raise fail(path, "the mesh has no faces (binary STL with 0 triangles)")
    if len(data) < 84 + 50 * n:
        raise fail(
            path,
            f"truncated: binary STL header declares {n} triangles, the file "
            f"holds {(len(data) - 84) // 50}",
        )
    dt = np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
    tri = np.frombuffer(data, dt, n, 84)
    with np.errstate(invalid="ignore"):  # NaN coordinates are reported by check_points
        v = tri["v"].reshape(-1, 3).astype(np.float64)
    return Mesh(v, np.arange(len(v), dtype=np.int64).reshape(-1, 3), str(path))
