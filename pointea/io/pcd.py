"""PCL point clouds (``.pcd``): ascii and binary parsed here, binary_compressed by open3d."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..o3d import import_open3d, quiet_stdout
from .colors import unit_colors
from .files import decode_text, fail, read_bytes
from .tables import fast_table, parse_float_rows, uniform_table
from .types import PointCloud

__all__ = ["read_pcd"]

_PCD_KEYS = (
    "VERSION",
    "FIELDS",
    "SIZE",
    "TYPE",
    "COUNT",
    "WIDTH",
    "HEIGHT",
    "VIEWPOINT",
    "POINTS",
    "DATA",
)


def read_pcd(path: Path, colour_scale: str = "auto") -> PointCloud:
    """A PCD cloud; a packed ``rgb`` / ``rgba`` field holds bytes, so its colours are
    0..255 whatever ``colour_scale`` says (checked like any other colours)."""
    data = read_bytes(path)
    header: dict[str, list[str]] = {}
    offset = 0
    lineno = 0
    while "DATA" not in header:
        nl = data.find(b"\n", offset)
        if nl < 0:
            if offset < len(data) and data[offset:].split()[:1] == [b"DATA"]:
                nl = len(data)
            else:
                raise fail(path, "PCD header has no DATA line (truncated or not a PCD file)")
        lineno += 1
        line = data[offset:nl].decode("latin-1").split("#", 1)[0].split()
        offset = nl + 1
        if not line:
            continue
        key = line[0].upper()
        if key not in _PCD_KEYS:
            raise fail(path, f"PCD header line {lineno}: unknown entry {line[0][:30]!r}")
        header[key] = line[1:]
        if lineno > 1000:
            raise fail(path, "PCD header too long")
    fields = header.get("FIELDS", [])
    if not fields:
        raise fail(path, "PCD header has no FIELDS")
    try:
        sizes = [int(s) for s in header.get("SIZE", [])]
        counts = [int(c) for c in header.get("COUNT", ["1"] * len(fields))]
        types = [t.upper() for t in header.get("TYPE", [])]
        if "POINTS" in header:
            npts = int(header["POINTS"][0])
        else:
            npts = int(header["WIDTH"][0]) * int(header.get("HEIGHT", ["1"])[0])
    except (ValueError, IndexError, KeyError):
        raise fail(path, "PCD header has a bad SIZE / COUNT / POINTS / WIDTH entry") from None
    if not (len(sizes) == len(types) == len(counts) == len(fields)):
        raise fail(
            path,
            f"PCD header: FIELDS ({len(fields)}), SIZE ({len(sizes)}), TYPE "
            f"({len(types)}) and COUNT ({len(counts)}) disagree",
        )
    if npts < 0 or any(c < 1 for c in counts):
        raise fail(path, "PCD header has a negative POINTS or a COUNT below 1")
    missing = [c for c in "xyz" if c not in fields]
    if missing:
        raise fail(path, f"PCD has no field {', '.join(missing)} (FIELDS {' '.join(fields)})")
    dtypes = []
    for f, s, t, c in zip(fields, sizes, types, counts, strict=True):
        code = {"F": "f", "I": "i", "U": "u"}.get(t)
        if code is None or s not in (1, 2, 4, 8) or (code == "f" and s not in (4, 8)):
            raise fail(path, f"PCD field {f!r}: unsupported TYPE {t} / SIZE {s}")
        dtypes.append((f, f"<{code}{s}", c))
    mode = (header["DATA"] or [""])[0].lower()
    if npts == 0:
        raise fail(path, "the point cloud is empty (POINTS 0)")
    names = [f"__{i}_{f}" for i, f in enumerate(fields)]  # PCD allows repeated "_" fields
    if mode == "ascii":
        text = decode_text(path, data[offset:])
        lines = text.splitlines()
        arr = uniform_table(lines[:npts], sum(counts)) if len(lines) >= npts else None
        if arr is None:
            arr = fast_table(lines[:npts]) if len(lines) >= npts else None
        if arr is None or arr.shape != (npts, sum(counts)):
            rows = [(lineno + i + 1, ln.split()) for i, ln in enumerate(lines)]
            rows = [r for r in rows if r[1]]
            if len(rows) < npts:
                raise fail(
                    path, f"truncated: header declares {npts} points, the file holds {len(rows)}"
                )
            arr = parse_float_rows(path, rows[:npts], "point", min_cols=sum(counts))
        cols: dict[str, np.ndarray] = {}
        j = 0
        for (f, _, c), name in zip(dtypes, names, strict=True):
            cols[name] = arr[:, j] if c == 1 else arr[:, j : j + c]
            cols.setdefault(f, cols[name])
            j += c
    elif mode == "binary":
        dt = np.dtype(
            [(n, d) if c == 1 else (n, d, c) for n, (_, d, c) in zip(names, dtypes, strict=True)]
        )
        if dt.itemsize * npts > len(data) - offset:
            raise fail(
                path,
                f"truncated: header declares {npts} points, the file holds "
                f"{(len(data) - offset) // dt.itemsize}",
            )
        rec = np.frombuffer(data, dt, npts, offset)
        cols = {}
        for (f, _, _), n in zip(dtypes, names, strict=True):
            cols.setdefault(f, rec[n])
    elif mode == "binary_compressed":
        # Check the declared sizes before open3d allocates anything.
        if len(data) - offset < 8:
            raise fail(path, "truncated: compressed PCD data has no size header")
        csize, usize = struct.unpack_from("<II", data, offset)
        point_size = sum(s * c for s, c in zip(sizes, counts, strict=True))
        if usize != point_size * npts:
            raise fail(
                path,
                f"compressed PCD: uncompressed size {usize} does not match "
                f"{npts} points of {point_size} bytes",
            )
        if csize > len(data) - offset - 8:
            raise fail(
                path,
                f"truncated: compressed PCD declares {csize} bytes of data, the "
                f"file holds {len(data) - offset - 8}",
            )
        return _read_pcd_open3d(path)
    else:
        raise fail(path, f"PCD DATA {mode!r} is not supported (ascii, binary, binary_compressed)")
    pts = np.stack([np.asarray(cols[c], np.float64) for c in "xyz"], axis=1)
    cloud = PointCloud(points=pts, source=str(path))
    nrm = ("normal_x", "normal_y", "normal_z")
    if all(n in cols for n in nrm):
        cloud.normals = np.stack([np.asarray(cols[n], np.float64) for n in nrm], axis=1)
    if "label" in cols:
        lab = np.asarray(cols["label"], np.float64)
        if np.all(np.isfinite(lab)) and np.all(lab == np.round(lab)):
            cloud.labels = lab.astype(np.int64)
    for name in ("rgb", "rgba"):
        if name in cols:
            packed = np.asarray(cols[name])
            if types[fields.index(name)] == "F":  # packed bytes stored as a float32
                packed = packed.astype(np.float32).view(np.uint32)
            packed = np.nan_to_num(packed.astype(np.float64)).astype(np.uint64) & 0xFFFFFFFF
            rgb = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1)
            cloud.colors = unit_colors(
                rgb, path, fields=[f"{c} (field {name})" for c in "rgb"], integer=True, scale="255"
            )
            break
    return cloud


def _read_pcd_open3d(path: Path) -> PointCloud:
    o3d = import_open3d()
    with quiet_stdout():
        pc = o3d.io.read_point_cloud(str(path), format="pcd")
    pts = np.asarray(pc.points, dtype=np.float64)
    if pts.size == 0:
        raise fail(
            path, "open3d read no points from this compressed PCD (empty, truncated or corrupt)"
        )
    cloud = PointCloud(points=pts.copy(), source=str(path))
    if pc.has_normals():
        cloud.normals = np.asarray(pc.normals, np.float64).copy()
    if pc.has_colors():
        cloud.colors = np.asarray(pc.colors, np.float64).copy()
    return cloud
