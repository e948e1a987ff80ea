"""PLY (ASCII and binary, either byte order): a cloud, or a mesh when it has faces."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .colors import unit_colors
from .files import decode_text, fail, read_bytes
from .geometry import check_faces, fan_triangulate
from .tables import fast_table, parse_float_rows, ragged_rows, strict_float, whole_numbers
from .types import Mesh, PointCloud

__all__ = ["read_ply"]

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
_PLY_NAMES = {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort",
              "i4": "int", "u4": "uint", "f4": "float", "f8": "double"}  # fmt: skip


@dataclass
class _PlyProperty:
    name: str
    dtype: str  # numpy code without byte order
    count_dtype: str | None = None  # set for list properties


@dataclass
class _PlyElement:
    name: str
    count: int
    props: list[_PlyProperty] = field(default_factory=list)


def _parse_ply_header(path: Path, data: bytes) -> tuple[str, list[_PlyElement], int]:
    if not data.startswith(b"ply"):
        raise fail(path, "not a PLY file (does not start with 'ply')")
    end = re.search(rb"end_header[ \t]*\r?\n", data[: 1 << 20])
    if end is None:
        if re.search(rb"end_header[ \t]*$", data[: 1 << 20]):
            end_pos = len(data)
        else:
            raise fail(path, "PLY header has no 'end_header' line (truncated or corrupt)")
    else:
        end_pos = end.end()
    header = data[:end_pos].decode("latin-1").splitlines()
    fmt = None
    elements: list[_PlyElement] = []
    for lineno, line in enumerate(header[1:], start=2):
        toks = line.split()
        if not toks or toks[0] in ("comment", "obj_info", "end_header"):
            continue
        if toks[0] == "format":
            if len(toks) < 2 or toks[1] not in (
                "ascii",
                "binary_little_endian",
                "binary_big_endian",
            ):
                raise fail(path, f"PLY header line {lineno}: unknown format {line.strip()!r}")
            fmt = toks[1]
        elif toks[0] == "element":
            if len(toks) != 3 or not toks[2].isdigit():
                raise fail(path, f"PLY header line {lineno}: bad element line {line.strip()!r}")
            elements.append(_PlyElement(toks[1], int(toks[2])))
        elif toks[0] == "property":
            if not elements:
                raise fail(path, f"PLY header line {lineno}: property before any element")
            if len(toks) == 5 and toks[1] == "list":
                if toks[2] not in _PLY_TYPES or toks[3] not in _PLY_TYPES:
                    raise fail(path, f"PLY header line {lineno}: unknown type in {line.strip()!r}")
                if _PLY_TYPES[toks[2]][0] == "f":
                    raise fail(
                        path, f"PLY header line {lineno}: list count type must be an integer type"
                    )
                elements[-1].props.append(
                    _PlyProperty(toks[4], _PLY_TYPES[toks[3]], _PLY_TYPES[toks[2]])
                )
            elif len(toks) == 3 and toks[1] in _PLY_TYPES:
                elements[-1].props.append(_PlyProperty(toks[2], _PLY_TYPES[toks[1]]))
            else:
                raise fail(path, f"PLY header line {lineno}: bad property line {line.strip()!r}")
        else:
            raise fail(path, f"PLY header line {lineno}: unexpected {toks[0]!r}")
    if fmt is None:
        raise fail(path, "PLY header has no 'format' line")
    return fmt, elements, end_pos


def _read_ply_binary(
    path: Path, data: bytes, offset: int, elements: list[_PlyElement], order: str
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for el in elements:
        remaining = len(data) - offset
        lists = [p for p in el.props if p.count_dtype is not None]
        if not lists:
            dt = np.dtype([(p.name, order + p.dtype) for p in el.props])
            need = dt.itemsize * el.count
            if need > remaining:
                have = remaining // max(dt.itemsize, 1)
                raise fail(
                    path,
                    f"truncated: header declares {el.count} {el.name} "
                    f"records, the file holds {have}",
                )
            arr = np.frombuffer(data, dt, el.count, offset) if el.count else np.zeros(0, dt)
            out[el.name] = {p.name: arr[p.name] for p in el.props}
            offset += need
            continue
        # Records with list properties: every record is at least the scalar and count sizes.
        min_size = sum(np.dtype(p.count_dtype or p.dtype).itemsize for p in el.props)
        if el.count * min_size > remaining:
            raise fail(
                path,
                f"truncated: header declares {el.count} {el.name} records, "
                f"the file is too short to hold them",
            )
        values, offset = _read_ply_binary_lists(path, data, offset, el, order)
        out[el.name] = values
    return out


def _read_ply_binary_lists(
    path: Path, data: bytes, offset: int, el: _PlyElement, order: str
) -> tuple[dict[str, Any], int]:
    """Fast path: every list has the same length as in the first record; else a slow loop."""
    if el.count == 0:
        return {p.name: ([] if p.count_dtype else np.zeros(0)) for p in el.props}, offset
    # Probe the first record to find each list's length.
    fields: list[tuple[str, str] | tuple[str, str, int]] = []
    pos = offset
    for p in el.props:
        if p.count_dtype is None:
            fields.append((p.name, order + p.dtype))
            pos += np.dtype(p.dtype).itemsize
        else:
            cdt = np.dtype(order + p.count_dtype)
            if pos + cdt.itemsize > len(data):
                raise fail(path, f"truncated inside the {el.name} records")
            n = int(np.frombuffer(data, cdt, 1, pos)[0])
            if n < 0:
                raise fail(path, f"{el.name} record 0: negative list length {n}")
            fields.append(("__n_" + p.name, order + p.count_dtype))
            if n:
                fields.append((p.name, order + p.dtype, n))
            pos += cdt.itemsize + n * np.dtype(p.dtype).itemsize
    dt = np.dtype(fields)  # type: ignore[arg-type]
    if offset + dt.itemsize * el.count <= len(data):
        arr = np.frombuffer(data, dt, el.count, offset)
        uniform = all(
            np.all(arr["__n_" + p.name] == arr["__n_" + p.name][0])
            for p in el.props
            if p.count_dtype
        )
        if uniform:
            res: dict[str, Any] = {}
            for p in el.props:
                if p.count_dtype is None:
                    res[p.name] = arr[p.name]
                elif p.name in arr.dtype.names:
                    res[p.name] = arr[p.name].reshape(el.count, -1)
                else:
                    res[p.name] = np.zeros((el.count, 0))
            return res, offset + dt.itemsize * el.count
    # Slow path: lists of varying length (polygons of mixed sizes).
    res_lists: dict[str, list[Any]] = {p.name: [] for p in el.props}
    for i in range(el.count):
        for p in el.props:
            if p.count_dtype is None:
                size = np.dtype(p.dtype).itemsize
                if offset + size > len(data):
                    raise fail(path, f"truncated: {el.name} record {i} of {el.count} is cut off")
                res_lists[p.name].append(np.frombuffer(data, order + p.dtype, 1, offset)[0])
                offset += size
            else:
                csize = np.dtype(p.count_dtype).itemsize
                if offset + csize > len(data):
                    raise fail(path, f"truncated: {el.name} record {i} of {el.count} is cut off")
                n = int(np.frombuffer(data, order + p.count_dtype, 1, offset)[0])
                offset += csize
                size = np.dtype(p.dtype).itemsize * n
                if n < 0 or offset + size > len(data):
                    raise fail(path, f"truncated: {el.name} record {i} of {el.count} is cut off")
                res_lists[p.name].append(np.frombuffer(data, order + p.dtype, n, offset))
                offset += size
    out: dict[str, Any] = {}
    for p in el.props:
        out[p.name] = res_lists[p.name] if p.count_dtype else np.asarray(res_lists[p.name])
    return out, offset


def _ascii_lists(el: _PlyElement, lines: list[str]) -> dict[str, Any] | None:
    """Records with list properties, all parsed at once (``None``: irregular, go slow)."""
    parsed = ragged_rows(lines)
    if parsed is None:
        return None
    values, offsets = parsed
    width = np.diff(offsets)
    pos = offsets[:-1].copy()  # (records,) where each record's next value is
    res: dict[str, Any] = {}
    for p in el.props:
        if np.any(pos >= offsets[1:]):
            return None
        if p.count_dtype is None:
            res[p.name] = values[pos]
            pos += 1
            continue
        n = whole_numbers(values[pos])
        if n is None or np.any(n < 0) or np.any(pos + 1 + n > offsets[1:]):
            return None
        if np.all(n == n[0]):
            res[p.name] = values[(pos + 1)[:, None] + np.arange(n[0])]
        else:
            res[p.name] = [
                values[a : a + k] for a, k in zip((pos + 1).tolist(), n.tolist(), strict=True)
            ]
        pos += 1 + n
    return res if np.all(pos <= offsets[:-1] + width) else None


def _read_ply_ascii(
    path: Path, data: bytes, offset: int, elements: list[_PlyElement]
) -> dict[str, dict[str, Any]]:
    text = decode_text(path, data[offset:])
    lines = text.splitlines()
    # Line numbers in messages count from the file's first line.
    line0 = data[:offset].count(b"\n") + 1
    out: dict[str, dict[str, Any]] = {}
    cursor = 0
    for el in elements:
        scalar = all(p.count_dtype is None for p in el.props)
        if scalar and el.count and cursor + el.count <= len(lines):
            # Fast path: the next count lines are exactly the records.
            arr = fast_table(lines[cursor : cursor + el.count])
            if arr is not None and arr.shape == (el.count, len(el.props)):
                out[el.name] = {p.name: arr[:, j] for j, p in enumerate(el.props)}
                cursor += el.count
                continue
        if not scalar and el.count and cursor + el.count <= len(lines):
            parsed = _ascii_lists(el, lines[cursor : cursor + el.count])
            if parsed is not None:
                out[el.name] = parsed
                cursor += el.count
                continue
        rows: list[tuple[int, list[str]]] = []
        while len(rows) < el.count and cursor < len(lines):
            toks = lines[cursor].split()
            if toks:
                rows.append((line0 + cursor, toks))
            cursor += 1
        if len(rows) < el.count:
            raise fail(
                path,
                f"truncated: header declares {el.count} {el.name} records, "
                f"the file holds {len(rows)}",
            )
        if scalar:
            arr = parse_float_rows(path, rows, el.name, min_cols=len(el.props))
            if arr.shape[1] != len(el.props) and el.count:
                raise fail(
                    path,
                    f"line {rows[0][0]}: {el.name} rows have {arr.shape[1]} "
                    f"values, the header declares {len(el.props)} properties",
                )
            out[el.name] = {p.name: arr[:, j] for j, p in enumerate(el.props)}
            continue
        res: dict[str, list[Any]] = {p.name: [] for p in el.props}
        for lineno, toks in rows:
            j = 0
            try:
                for p in el.props:
                    if p.count_dtype is None:
                        res[p.name].append(strict_float(toks[j]))
                        j += 1
                    else:
                        n = int(toks[j])
                        if n < 0 or j + 1 + n > len(toks):
                            raise IndexError
                        res[p.name].append([strict_float(t) for t in toks[j + 1 : j + 1 + n]])
                        j += 1 + n
            except (ValueError, IndexError):
                raise fail(
                    path, f"line {lineno}: malformed {el.name} record {' '.join(toks)[:60]!r}"
                ) from None
        out[el.name] = {
            p.name: (res[p.name] if p.count_dtype else np.asarray(res[p.name])) for p in el.props
        }
    return out


def read_ply(
    path: Path, colour_scale: str = "auto", mesh_colors: bool = True
) -> tuple[PointCloud, Mesh | None]:
    """The vertices of a PLY file as a cloud (normals, colours and labels when the
    vertices carry them), and its mesh when it has faces.

    Args:
        path: the file.
        colour_scale: the scale of ``red green blue`` (or ``r g b``) vertex properties:
            ``"auto"`` decides from their declared type (integer types are 0..255) and
            range (:func:`~pointea.io.colors.unit_colors`); ``"1"`` or ``"255"``.
        mesh_colors: read the vertex colours of a file with faces too (a caller that
            samples the surface does not use them).
    """
    data = read_bytes(path)
    fmt, elements, offset = _parse_ply_header(path, data)
    if fmt == "ascii":
        values = _read_ply_ascii(path, data, offset, elements)
    else:
        order = "<" if fmt == "binary_little_endian" else ">"
        values = _read_ply_binary(path, data, offset, elements, order)
    vertex = values.get("vertex")
    if vertex is None:
        raise fail(path, "PLY file has no 'vertex' element")
    missing = [c for c in "xyz" if c not in vertex]
    if missing:
        raise fail(path, f"PLY element 'vertex' has no property {', '.join(missing)}")
    pts = np.stack([np.asarray(vertex[c], dtype=np.float64) for c in "xyz"], axis=1)
    cloud = PointCloud(points=pts, source=str(path))
    if all(k in vertex for k in ("nx", "ny", "nz")):
        cloud.normals = np.stack(
            [np.asarray(vertex[k], np.float64) for k in ("nx", "ny", "nz")], axis=1
        )
    face = values.get("face")
    has_faces = face is not None and len(next(iter(face.values()), [])) > 0
    declared = {p.name: p.dtype for el in elements if el.name == "vertex" for p in el.props}
    for names in (("red", "green", "blue"), ("r", "g", "b")):
        if all(k in vertex for k in names) and (mesh_colors or not has_faces):
            cols = np.stack([np.asarray(vertex[k], np.float64) for k in names], axis=1)
            cloud.colors = unit_colors(
                cols,
                path,
                fields=[f"property {k} ({_PLY_NAMES[declared[k]]})" for k in names],
                integer=all(declared[k][0] in "iu" for k in names),
                scale=colour_scale,
            )
            break
    for name in ("label", "class", "part", "scalar_label"):
        if name in vertex:
            lab = np.asarray(vertex[name], dtype=np.float64)
            if lab.size and np.all(np.isfinite(lab)) and np.all(lab == np.round(lab)):
                cloud.labels = lab.astype(np.int64)
            break
    mesh = None
    if has_faces:
        key = next((k for k in ("vertex_indices", "vertex_index") if k in face), None)
        if key is None:
            raise fail(path, "PLY element 'face' has no 'vertex_indices' list")
        lists = face[key]
        if isinstance(lists, np.ndarray):  # every face has the same number of corners
            if lists.shape[1] < 3:
                raise fail(path, "PLY faces have fewer than 3 vertices")
            sizes = np.full(len(lists), lists.shape[1], dtype=np.int64)
            corners = lists.reshape(-1)
        else:
            sizes = np.array([len(p) for p in lists], dtype=np.int64)
            corners = np.concatenate([np.asarray(p).reshape(-1) for p in lists])
        whole = whole_numbers(np.asarray(corners, dtype=np.float64))
        if whole is None:
            raise fail(path, "PLY face indices must be whole numbers")
        tris = fan_triangulate(whole, sizes)
        mesh = Mesh(pts, check_faces(path, tris, len(pts)), str(path))
    return cloud, mesh
