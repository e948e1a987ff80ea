"""STL meshes, ASCII and binary."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np

from .files import decode_text, fail, read_bytes
from .tables import leading_columns
from .types import Mesh

__all__ = ["read_stl"]


_VERTEX = re.compile(r"\n[ \t]*vertex\b([^\n]*)", re.I)  # on "\n" + text: see obj.py


def _is_binary(data: bytes) -> bool:
    """Binary unless it is text starting with ``solid`` whose size is not a binary one.

    Binary exporters often begin the 80-byte header with "solid", so the keyword alone
    decides nothing: the size rule (84 + 50 * triangles bytes) is tried first, and a file
    with NUL bytes is never ASCII.
    """
    if len(data) >= 84:
        (n,) = struct.unpack_from("<I", data, 80)
        if len(data) == 84 + 50 * n:
            return True
    text_like = data.lstrip().startswith(b"solid") and b"\x00" not in data
    return not text_like and len(data) >= 84


def read_stl(path: Path) -> Mesh:
    """Triangles of a binary or ASCII STL file (three vertices per facet, not merged)."""
    data = read_bytes(path)
    if _is_binary(data):
        return _read_stl_binary(path, data, struct.unpack_from("<I", data, 80)[0])
    if not data.lstrip().startswith(b"solid"):
        raise fail(
            path,
            f"not an STL file ({len(data)} bytes: too short for binary STL and no 'solid' keyword)",
        )
    text = decode_text(path, data)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n" + text
    rows = _VERTEX.findall(text)
    if not rows:
        raise fail(path, "the mesh has no facets (no 'vertex' lines)")

    def line_of(k: int) -> int:
        m = next(m for i, m in enumerate(_VERTEX.finditer(text)) if i == k)
        return text.count("\n", 0, m.start()) + 1

    if len(rows[-1].split()) < 3:
        raise fail(path, "truncated: a 'vertex' line is cut off")
    if len(rows) % 3:
        raise fail(
            path,
            f"truncated or corrupt: {len(rows)} vertices is not a multiple of 3 "
            f"(every facet has 3)",
        )
    v = leading_columns(path, rows, 3, line_of, "vertex")
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
