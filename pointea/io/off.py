"""OFF meshes (and the COFF / NOFF / STOFF variants)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .files import decode_text, fail, read_bytes
from .geometry import check_faces, fan_triangulate
from .tables import all_numbers, leading_columns, ragged_rows, whole_numbers
from .types import Mesh

__all__ = ["read_off"]


_COMMENT = re.compile(r"#[^\n]*")
_BLANK = re.compile(r"\n[ \t]*(?=\n)")
_KEYWORD = re.compile(r"(ST)?(C)?(N)?(4)?(n)?OFF(.*)")


def _data_lines(text: str) -> Callable[[int], int]:
    """Maps the index of a non-blank line to its line number (built on errors only)."""

    def line_of(k: int) -> int:
        numbers = [i for i, ln in enumerate(text.split("\n"), start=1) if ln.strip()]
        return numbers[k] if k < len(numbers) else len(numbers)

    return line_of


def read_off(path: Path) -> Mesh:
    """Vertices and fan-triangulated faces of an OFF / COFF / NOFF / STOFF file."""
    text = decode_text(path, read_bytes(path))
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "#" in text:
        text = _COMMENT.sub("", text)
    line_of = _data_lines(text)
    body = _BLANK.sub("", text).strip()
    if not body:
        raise fail(path, "holds no data")
    lines = body.split("\n")
    head = lines[0].split()
    m = _KEYWORD.fullmatch(head[0])
    if m is None:
        raise fail(path, f"line {line_of(0)}: not an OFF file (first word {head[0][:20]!r})")
    if m.group(4) or m.group(5):
        raise fail(path, f"line {line_of(0)}: {head[0]!r} (4-D / n-D OFF) is not supported")
    # ModelNet40's files sometimes glue the counts to the keyword: "OFF490 518 0".
    counts = ([m.group(6)] if m.group(6) else []) + head[1:]
    start = 1
    if not counts:
        if len(lines) < 2:
            raise fail(path, "OFF header has no vertex/face counts")
        counts, start = lines[1].split(), 2
    if len(counts) < 2 or not all(c.isdigit() for c in counts[:3]):
        raise fail(path, f"line {line_of(start - 1)}: bad OFF counts {' '.join(counts)[:60]!r}")
    nv, nf = int(counts[0]), int(counts[1])
    if nv == 0:
        raise fail(path, "the mesh has no vertices")
    if nf == 0:
        raise fail(
            path,
            "the mesh has no faces: nothing to sample a surface from "
            "(save the points as .xyz or .ply to use them as a cloud)",
        )
    have = len(lines) - start
    if nv + nf > have:
        raise fail(
            path,
            f"truncated: header declares {nv} vertices and {nf} faces, "
            f"the file holds {have} data lines",
        )
    verts = leading_columns(
        path, lines[start : start + nv], 3, lambda k: line_of(start + k), "vertex"
    )
    frows = lines[start + nv : start + nv + nf]
    corners, sizes = _faces(path, frows, lambda k: line_of(start + nv + k))
    tris = fan_triangulate(corners, sizes)
    if len(tris) == 0:
        raise fail(path, "the mesh has no faces with 3 or more vertices")
    return Mesh(verts, check_faces(path, tris, nv), str(path))


def _faces(
    path: Path, rows: list[str], line_of: Callable[[int], int]
) -> tuple[np.ndarray, np.ndarray]:
    """Face rows ``n i1 .. in [colour]`` as (corner indices, corners per face)."""
    parsed = ragged_rows(rows)
    if parsed is not None:
        values, offsets = parsed
        width = np.diff(offsets)
        n = np.where(width > 0, values[np.minimum(offsets[:-1], max(len(values) - 1, 0))], -1)
        good = (n >= 0) & (n == np.round(n)) & (n + 1 <= width)
        if good.all():
            sizes = n.astype(np.int64)
            first = np.repeat(offsets[:-1] + 1, sizes)
            local = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
            corners = whole_numbers(values[first + local])
            if corners is not None:
                return corners, sizes
            cv = values[first + local]
            with np.errstate(invalid="ignore"):
                bad = ~np.isfinite(cv) | (np.abs(cv) > 2**53) | (cv != np.round(cv))
            good = np.ones(len(rows), bool)
            good[np.repeat(np.arange(len(rows)), sizes)[bad]] = False
        k = int(np.flatnonzero(~good)[0])
    else:
        k = next(i for i, row in enumerate(rows) if not all_numbers(row.split()))
    raise fail(path, f"line {line_of(k)}: malformed face {rows[k].strip()[:60]!r}")
