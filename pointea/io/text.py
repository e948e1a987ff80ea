"""Text point clouds: ``.xyz .txt .pts`` rows ``x y z [more columns]``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .files import decode_text, fail, read_bytes
from .tables import COMMENTS, all_numbers, fast_table, parse_float_rows, repair_control_bytes
from .types import PointCloud

__all__ = ["read_text_cloud", "read_text_table", "as_colors"]


def read_text_table(path: Path) -> np.ndarray:
    """The numbers of a text cloud as a float ``(rows, columns)`` table (at least three
    columns): an optional header row (column names, or a Leica ``.pts`` point count) and
    comment lines are skipped; rows are split on spaces, tabs, commas or semicolons.
    Stray control bytes inside rows (as in the published S3DIS room files) are repaired
    with a warning naming the line (:func:`~pointea.io.tables.repair_control_bytes`)."""
    text = repair_control_bytes(_decode_table(path, read_bytes(path)), path)
    lines = text.splitlines()
    data_rows = []
    for i, line in enumerate(lines):
        s = line.strip()
        if s and not s.startswith(COMMENTS):
            data_rows.append(i)
            if len(data_rows) == 2:
                break
    if not data_rows:
        raise fail(path, "holds no data rows (only blank lines or comments)")
    start = data_rows[0]
    first = lines[start].replace(",", " ").replace(";", " ").split()
    if len(data_rows) > 1 and (
        not all_numbers(first)
        or (len(first) == 1 and len(lines[data_rows[1]].replace(",", " ").split()) >= 3)
    ):
        start = data_rows[1]
    head = lines[start]
    arr = None
    if ";" not in head:
        arr = fast_table(lines[start:], "," if "," in head else None)
        if arr is not None and arr.shape[1] < 3:
            arr = None
    if arr is None:
        rows = [
            (lineno, s.replace(",", " ").replace(";", " ").split())
            for lineno, s in ((i + 1, lines[i].strip()) for i in range(start, len(lines)))
            if s and not s.startswith(COMMENTS)
        ]
        arr = parse_float_rows(path, rows, "point")
    return arr


#: a text table with more NUL bytes than this is taken for a binary file
MAX_STRAY_NULS = 16


def _decode_table(path: Path, data: bytes) -> str:
    """:func:`~pointea.io.files.decode_text`, except that a few NUL bytes inside text
    rows (a corruption of the published S3DIS files) are let through to the repair."""
    nuls = data.count(b"\x00")
    if 0 < nuls <= MAX_STRAY_NULS:
        head = data[:4096].replace(b"\x00", b" ")
        if b"\n" in data[:65536] and all(32 <= c < 127 or c in b"\t\r\n" for c in head):
            try:  # decode_text's decoding, without its NUL refusal
                return data.decode("utf-8-sig")
            except UnicodeDecodeError:
                return data.decode("latin-1")
    return decode_text(path, data)


def read_text_cloud(path: Path) -> PointCloud:
    arr = read_text_table(path)
    cloud = PointCloud(points=arr[:, :3], source=str(path))
    ncols = arr.shape[1]
    if path.suffix.lower() == ".pts" and ncols in (4, 7):
        if ncols == 7:  # Leica PTS: x y z intensity r g b
            cloud.colors = as_colors(arr[:, 4:7])
        return cloud
    if ncols >= 6:
        extra = arr[:, 3:6]
        norms = np.sqrt((extra * extra).sum(axis=1))
        if np.all(np.isfinite(norms)) and np.median(np.abs(norms - 1.0)) < 0.05:
            cloud.normals = extra  # ModelNet40 resampled / ShapeNetPart: x y z nx ny nz
        else:
            cloud.colors = as_colors(extra)  # x y z r g b (0..1 or 0..255), else None
    if ncols in (4, 7):  # x y z label / ShapeNetPart: x y z nx ny nz part
        last = arr[:, -1]
        if np.all(np.isfinite(last)) and np.all(last == np.round(last)) and np.all(last >= 0):
            cloud.labels = last.astype(np.int64)
    return cloud


def as_colors(values: np.ndarray) -> np.ndarray | None:
    """Colour columns in ``[0, 1]`` or ``0..255`` as floats in ``[0, 1]`` (else ``None``)."""
    if not np.all(np.isfinite(values)) or values.min() < 0:
        return None
    if values.max() <= 1.0:
        return values
    if values.max() <= 255.0:
        return values / 255.0
    return None
