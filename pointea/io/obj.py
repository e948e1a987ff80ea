"""Wavefront OBJ meshes: the vertices (``v``) and faces (``f``); everything else is skipped.

Parsed in bulk, linear in the file size: regular expressions pick the ``v`` and ``f``
lines out of the whole text, numpy's C parser reads their numbers, and polygons are fanned
into triangles with array arithmetic. What real exports hold is understood: objects and
groups, ``mtllib`` / ``usemtl``, ``vt`` / ``vn``, ``v/vt/vn`` corners, negative (relative)
indices, quads and n-gons, line continuations (``\\`` at the end of a line), comments,
CRLF line ends, vertex colours (``v x y z r g b``) and stray non-UTF-8 bytes. Problems are
reported with the line they are on (the line counted after joining continued lines).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .files import decode_text, fail, read_bytes
from .geometry import fan_triangulate
from .tables import leading_columns, ragged_rows, whole_numbers
from .types import Mesh

__all__ = ["read_obj"]

# Each pattern starts at the newline before its line (the text gets one in front): a
# literal first character lets the regex engine skip ahead, twice as fast as "^" + re.M.
_VERTEX = re.compile(r"\n[ \t]*v[ \t]+([^\n]*)")
_FACE = re.compile(r"\n[ \t]*f[ \t]+([^\n]*)")
_KIND = re.compile(r"\n[ \t]*([vf])[ \t]")
_COMMENT = re.compile(r"#[^\n]*")
_AFTER_SLASH = re.compile(r"/[^ \t\n]*")


def _clean(text: str) -> str:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\\\n" in text:
        text = text.replace("\\\n", " ")  # a continued line
    if "#" in text:
        text = _COMMENT.sub("", text)
    return "\n" + text


def _line_of(text: str, pattern: re.Pattern, k: int) -> int:
    """Line number of the ``k``-th match of ``pattern`` (only called to report an error)."""
    for i, m in enumerate(pattern.finditer(text)):
        if i == k:
            return text.count("\n", 0, m.start()) + 1
    return 0


def _face_error(path: Path, text: str, rows: list[str], bad: np.ndarray, problem: str) -> None:
    k = int(np.flatnonzero(bad)[0])
    raise fail(path, f"line {_line_of(text, _FACE, k)}: {problem}")


def read_obj(path: Path) -> Mesh:
    """Vertices and fan-triangulated faces of an OBJ file."""
    text = _clean(decode_text(path, read_bytes(path)))
    vrows = _VERTEX.findall(text)
    frows = _FACE.findall(text)
    if not vrows:
        raise fail(path, "holds no vertices ('v' lines)")
    if not frows:
        raise fail(
            path,
            "the mesh has no faces ('f' lines): nothing to sample a surface "
            "from (save the points as .xyz or .ply to use them as a cloud)",
        )
    verts = leading_columns(path, vrows, 3, lambda k: _line_of(text, _VERTEX, k), "vertex")
    nv = len(verts)
    # Corners are "v", "v/vt", "v//vn" or "v/vt/vn": keep the vertex index.
    corner_rows = _AFTER_SLASH.sub("", "\n".join(frows)).split("\n") if "/" in text else frows
    parsed = ragged_rows(corner_rows)
    if parsed is None:
        for k, row in enumerate(corner_rows):
            for tok, orig in zip(row.split(), frows[k].split(), strict=False):
                try:
                    int(tok)
                except ValueError:
                    line = _line_of(text, _FACE, k)
                    raise fail(path, f"line {line}: bad face index {orig[:30]!r}") from None
        raise fail(path, "bad face indices")  # pragma: no cover - ragged_rows agrees
    values, offsets = parsed
    idx = whole_numbers(values)
    counts = np.diff(offsets)
    row_of = np.repeat(np.arange(len(frows)), counts)  # (corners,) the face row of each
    if idx is None:
        bad = np.zeros(len(frows), bool)
        bad[row_of[(values != np.round(values)) | ~np.isfinite(values)]] = True
        _face_error(path, text, frows, bad, "bad face index (not an integer)")
    if np.any(idx == 0):
        bad = np.zeros(len(frows), bool)
        bad[row_of[idx == 0]] = True
        _face_error(path, text, frows, bad, "face index 0 (OBJ indices start at 1)")
    if np.any(idx < 0):
        # Relative indices count back from the vertices defined before the face's line.
        kinds = np.array(_KIND.findall(text)) == "v"
        defined = np.cumsum(kinds)[~kinds]  # (face rows,) vertices defined so far
        resolved = np.where(idx > 0, idx - 1, defined[row_of] + idx)
    else:
        resolved = idx - 1
    out = (resolved < 0) | (resolved >= nv)
    if np.any(out):
        k = int(np.flatnonzero(out)[0])
        bad = np.zeros(len(frows), bool)
        bad[row_of[k]] = True
        _face_error(
            path,
            text,
            frows,
            bad,
            f"face refers to vertex {int(idx[k])}, but the file has {nv} vertices",
        )
    tris = fan_triangulate(resolved, counts)
    if len(tris) == 0:
        raise fail(path, "the mesh has no faces with 3 or more vertices")
    return Mesh(verts, tris, str(path))
