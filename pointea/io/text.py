"""Text point clouds: ``.xyz .txt .pts`` rows ``x y z [more columns]``."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .colors import unit_colors
from .files import decode_text, fail, read_bytes
from .tables import COMMENTS, all_numbers, fast_table, parse_float_rows, repair_control_bytes
from .types import PointCloud

__all__ = ["TextTable", "read_text_cloud", "read_text_rows", "read_text_table"]

#: characters of a number written with a fraction or exponent (or nan / inf)
_NOT_INTEGER = frozenset(".eEnNiI")


def _split_lines(text: str) -> list[str]:
    """The file's own lines: split at line feeds (``\\r\\n`` too), at carriage returns only
    when the file has no line feed. (``str.splitlines`` also splits at form feeds and
    Unicode separators, which would shift the line numbers named in messages.)"""
    return text.split("\n") if "\n" in text or "\r" not in text else text.split("\r")


def _is_data(line: str) -> bool:
    s = line.strip()
    return bool(s) and not s.startswith(COMMENTS)


def _table_lines(path: Path) -> tuple[list[str], int]:
    """The file's lines (control bytes repaired) and the index of the first data row."""
    text = repair_control_bytes(_decode_table(path, read_bytes(path)), path)
    lines = _split_lines(text)
    data_rows = []
    for i, line in enumerate(lines):
        if _is_data(line):
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
    return lines, start


@dataclass(eq=False)
class TextTable:
    """The numbers of a text cloud, and where each row lies in the file.

    Args:
        values: ``(rows, columns)`` float64.
        path: the file; read again, only when a message needs a line number or a
            colour scale needs the way numbers were written (nothing is kept meanwhile).
    """

    values: np.ndarray
    path: Path

    @cached_property
    def _lines_and_rows(self) -> tuple[list[str], np.ndarray]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the repairs were reported on the first read
            lines, start = _table_lines(self.path)
        rows = np.array([i for i in range(start, len(lines)) if _is_data(lines[i])], np.int64)
        return lines, rows

    def line_of(self, row: int) -> int:
        """The 1-based line of the file that holds data row ``row`` (0-based)."""
        rows = self._lines_and_rows[1]
        return int(rows[row]) + 1 if 0 <= row < len(rows) else row + 1

    def written_as_integers(self, columns: slice) -> bool:
        """Whether every value of ``columns`` is written without a point or exponent."""
        lines, rows = self._lines_and_rows
        for i in rows.tolist():
            toks = lines[i].replace(",", " ").replace(";", " ").split()[columns]
            if any(_NOT_INTEGER.intersection(t) for t in toks):
                return False
        return True

    def colors(
        self, columns: slice, scale: str = "auto", names: tuple[str, ...] = ("r", "g", "b")
    ) -> np.ndarray:
        """Colour columns as floats in ``[0, 1]`` (:func:`~pointea.io.colors.unit_colors`;
        a value is named by its line, a field by its column number)."""
        first = columns.start + 1
        fields = [f"{n} (column {first + k})" for k, n in enumerate(names)]
        values = self.values[:, columns]
        whole = bool(np.all((values == 0) | (values == 1)))  # the only case the writing decides
        return unit_colors(
            values,
            self.path,
            fields=fields,
            integer=whole and self.written_as_integers(columns),
            scale=scale,
            line_of=self.line_of,
        )


def read_text_rows(path: Path) -> TextTable:
    """The numbers of a text cloud as a :class:`TextTable` (at least three columns): an
    optional header row (column names, or a Leica ``.pts`` point count) and comment lines
    are skipped; rows are split on spaces, tabs, commas or semicolons. Stray control bytes
    inside rows (as in the published S3DIS room files) are repaired with a warning naming
    the line (:func:`~pointea.io.tables.repair_control_bytes`). Messages name the file's
    own line numbers (1-based, header and comment lines counted)."""
    lines, start = _table_lines(path)
    head = lines[start]
    arr = None
    if ";" not in head:
        arr = fast_table(lines[start:], "," if "," in head else None)
        if arr is not None and arr.shape[1] < 3:
            arr = None
    if arr is None:
        rows = [
            (i + 1, lines[i].strip().replace(",", " ").replace(";", " ").split())
            for i in range(start, len(lines))
            if _is_data(lines[i])
        ]
        arr = parse_float_rows(path, rows, "point")
    return TextTable(arr, path)


def read_text_table(path: Path) -> np.ndarray:
    """:func:`read_text_rows`' values: a float ``(rows, columns)`` table."""
    return read_text_rows(path).values


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


def read_text_cloud(path: Path, colour_scale: str = "auto") -> PointCloud:
    """A text cloud: ``x y z``, then ``label``, ``nx ny nz`` (unit vectors), ``r g b``
    (colours, scale by :func:`~pointea.io.colors.unit_colors`) and ``label`` columns as
    their count says (Leica ``.pts``: ``x y z intensity r g b``). Three extra columns
    that are neither unit vectors nor values in ``0..255`` are not read as colours."""
    table = read_text_rows(path)
    arr = table.values
    cloud = PointCloud(points=arr[:, :3], source=str(path), line_of=table.line_of)
    ncols = arr.shape[1]
    if path.suffix.lower() == ".pts" and ncols in (4, 7):
        if ncols == 7 and _could_be_colors(arr[:, 4:7]):  # Leica PTS: x y z intensity r g b
            cloud.colors = table.colors(slice(4, 7), colour_scale)
        return cloud
    if ncols >= 6:
        extra = arr[:, 3:6]
        norms = np.sqrt((extra * extra).sum(axis=1))
        if np.all(np.isfinite(norms)) and np.median(np.abs(norms - 1.0)) < 0.05:
            cloud.normals = extra  # ModelNet40 resampled / ShapeNetPart: x y z nx ny nz
        elif _could_be_colors(extra):
            cloud.colors = table.colors(slice(3, 6), colour_scale)  # x y z r g b
    if ncols in (4, 7):  # x y z label / ShapeNetPart: x y z nx ny nz part
        last = arr[:, -1]
        if np.all(np.isfinite(last)) and np.all(last == np.round(last)) and np.all(last >= 0):
            cloud.labels = last.astype(np.int64)
    return cloud


def _could_be_colors(values: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(values)) and values.min() >= 0 and values.max() <= 255)
