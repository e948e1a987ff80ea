"""OFF meshes (and the COFF / NOFF / STOFF variants)."""

from __future__ import annotations

import re
from pathlib import Path

from .files import decode_text, fail, read_bytes
from .geometry import check_faces, fan_triangulate
from .tables import parse_float_rows
from .types import Mesh

__all__ = ["read_off"]


def read_off(path: Path) -> Mesh:
    text = decode_text(path, read_bytes(path))
    lines = [(i, ln.split("#", 1)[0].split()) for i, ln in enumerate(text.splitlines(), start=1)]
    lines = [(i, t) for i, t in lines if t]
    if not lines:
        raise fail(path, "holds no data")
    lineno, head = lines[0]
    m = re.fullmatch(r"(ST)?(C)?(N)?(4)?(n)?OFF(.*)", head[0])
    if m is None:
        raise fail(path, f"line {lineno}: not an OFF file (first word {head[0][:20]!r})")
    if m.group(4) or m.group(5):
        raise fail(path, f"line {lineno}: {head[0]!r} (4-D / n-D OFF) is not supported")
    # ModelNet40's files sometimes glue the counts to the keyword: "OFF490 518 0".
    counts = ([m.group(6)] if m.group(6) else []) + head[1:]
    rest = lines[1:]
    if not counts:
        if not rest:
            raise fail(path, "OFF header has no vertex/face counts")
        lineno, counts = rest[0]
        rest = rest[1:]
    if len(counts) < 2 or not all(c.isdigit() for c in counts[:3]):
        raise fail(path, f"line {lineno}: bad OFF counts {' '.join(counts)[:60]!r}")
    nv, nf = int(counts[0]), int(counts[1])
    if nv == 0:
        raise fail(path, "the mesh has no vertices")
    if nf == 0:
        raise fail(
            path,
            "the mesh has no faces: nothing to sample a surface from "
            "(save the points as .xyz or .ply to use them as a cloud)",
        )
    if nv + nf > len(rest):
        raise fail(
            path,
            f"truncated: header declares {nv} vertices and {nf} faces, "
            f"the file holds {len(rest)} data lines",
        )
    vrows = [(i, t[:3]) for i, t in rest[:nv]]
    verts = parse_float_rows(path, vrows, "vertex")
    polys: list[list[int]] = []
    for i, toks in rest[nv : nv + nf]:
        try:
            n = int(toks[0])
            if n < 0 or len(toks) < n + 1:
                raise ValueError
            poly = [int(t) for t in toks[1 : n + 1]]
        except ValueError:
            raise fail(path, f"line {i}: malformed face {' '.join(toks)[:60]!r}") from None
        if n >= 3:
            polys.append(poly)
    if not polys:
        raise fail(path, "the mesh has no faces with 3 or more vertices")
    return Mesh(verts, check_faces(path, fan_triangulate(polys), nv), str(path))
