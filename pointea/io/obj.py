"""Wavefront OBJ meshes (vertices and faces; everything else is skipped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .files import decode_text, fail, read_bytes
from .geometry import fan_triangulate
from .tables import parse_float_rows
from .types import Mesh

__all__ = ["read_obj"]


def read_obj(path: Path) -> Mesh:
    text = decode_text(path, read_bytes(path))
    vrows: list[tuple[int, list[str]]] = []
    faces: list[tuple[int, list[str]]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        toks = line.split("#", 1)[0].split()
        if not toks:
            continue
        if toks[0] == "v":
            if len(toks) < 4:
                raise fail(path, f"line {lineno}: vertex needs 3 coordinates, got {len(toks) - 1}")
            vrows.append((lineno, toks[1:4]))
        elif toks[0] == "f":
            faces.append((lineno, toks[1:]))
    if not vrows:
        raise fail(path, "holds no vertices ('v' lines)")
    if not faces:
        raise fail(
            path,
            "the mesh has no faces ('f' lines): nothing to sample a surface "
            "from (save the points as .xyz or .ply to use them as a cloud)",
        )
    verts = parse_float_rows(path, vrows, "vertex")
    nv = len(verts)
    polys: list[list[int]] = []
    seen_v = [i for i, _ in vrows]
    for lineno, toks in faces:
        # Relative (negative) indices count back from the vertices defined so far.
        defined = int(np.searchsorted(seen_v, lineno))
        poly = []
        for t in toks:
            head = t.split("/", 1)[0]
            try:
                k = int(head)
            except ValueError:
                raise fail(path, f"line {lineno}: bad face index {t[:30]!r}") from None
            if k == 0:
                raise fail(path, f"line {lineno}: face index 0 (OBJ indices start at 1)")
            idx = k - 1 if k > 0 else defined + k
            if not 0 <= idx < nv:
                raise fail(
                    path,
                    f"line {lineno}: face refers to vertex {k}, but the file has {nv} vertices",
                )
            poly.append(idx)
        if len(poly) >= 3:
            polys.append(poly)
    if not polys:
        raise fail(path, "the mesh has no faces with 3 or more vertices")
    return Mesh(verts, fan_triangulate(polys), str(path))
