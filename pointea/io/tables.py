"""Numbers in text: rows of floats parsed in bulk, with the offending line named on failure."""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError
from .files import fail, first_line

__all__ = [
    "COMMENTS",
    "CONTROL_BYTES",
    "TableRepairWarning",
    "repair_control_bytes",
    "fast_table",
    "parse_float_rows",
    "parse_float_table",
    "check_finite",
    "all_numbers",
    "ragged_rows",
    "leading_columns",
    "uniform_table",
    "whole_numbers",
    "is_number",
    "strict_float",
    "strict_floats",
]

COMMENTS = ("#", "//", "%")
#: ASCII control characters other than tab, line feed and carriage return
CONTROL_BYTES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+")


class TableRepairWarning(UserWarning):
    """A row of a text table held control bytes and was repaired in memory (file and
    line named in the message; nothing on disk is changed)."""


def _tokens(line: str) -> list[str]:
    return line.replace(",", " ").replace(";", " ").split()


def repair_control_bytes(
    text: str,
    path: Path,
    ncols: int | None = None,
    category: type[Warning] = TableRepairWarning,
) -> str:
    """Repair rows of a numeric text table that hold stray ASCII control bytes.

    The published S3DIS release has such rows in two forms, and the public loaders fix
    them by hand in two ways, which this function follows:

    * a byte **between** two numbers (``185\\x00187``, a NUL where a space belongs):
      replaced by a space;
    * a byte **inside** a number (``103.0\\x100000``, ``-6.2\\x162``): deleted (the
      digit it replaced is lost; the value is read from the remaining digits).

    One rule decides: a run of control bytes becomes a space if the row then has
    ``ncols`` numbers, else it is deleted if the row then has ``ncols`` numbers; a row
    that fits neither way is left as it is (the parser then names it). ``ncols`` defaults
    to the field count of the first data row without control bytes. Each repaired row
    gives one ``category`` warning naming the file, the line, the bytes and the result.

    Args:
        text: the file's content.
        path: the file (for messages).
        ncols: the number of values every row holds (``None``: taken from the file).
        category: the warning class.

    Returns:
        ``text`` with the repaired rows (unchanged when it holds no control bytes).
    """
    if not CONTROL_BYTES.search(text):
        return text
    lines = text.split("\n")
    if ncols is None:
        for line in lines:
            s = line.strip()
            if s and not s.startswith(COMMENTS) and not CONTROL_BYTES.search(s):
                toks = _tokens(s)
                if all_numbers(toks):
                    ncols = len(toks)
                    break
    for i, line in enumerate(lines):
        if not CONTROL_BYTES.search(line):
            continue
        found = sorted({f"0x{ord(c):02x}" for c in "".join(CONTROL_BYTES.findall(line))})
        for fixed, how in (
            (CONTROL_BYTES.sub(" ", line), "replaced by a space"),
            (CONTROL_BYTES.sub("", line), "deleted (a digit may be missing)"),
        ):
            toks = _tokens(fixed)
            if (ncols is None or len(toks) == ncols) and toks and all_numbers(toks):
                lines[i] = fixed
                warnings.warn(
                    f"{path}: line {i + 1} holds the control byte(s) {', '.join(found)}; "
                    f"{how}, as the public S3DIS loaders repair the release: "
                    f"{fixed.strip()[:60]!r}",
                    category,
                    stacklevel=3,
                )
                break
    return "\n".join(lines)


def fast_table(lines: Sequence[str], delimiter: str | None = None) -> np.ndarray | None:
    """numpy's C parser on well-formed rows (about 20x faster than splitting in Python).

    Returns ``None`` on any irregularity; the caller then parses line by line, which
    finds the offending line for the error message.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data"
            arr = np.loadtxt(
                lines, dtype=np.float64, delimiter=delimiter, comments=list(COMMENTS), ndmin=2
            )
    except (ValueError, IndexError, TypeError):
        return None
    return arr if arr.size else None


def parse_float_rows(
    path: Path, rows: list[tuple[int, list[str]]], what: str, min_cols: int = 3
) -> np.ndarray:
    """``rows`` = ``(line number, tokens)``; returns ``(len(rows), ncols)`` float64.

    All rows must have the same number of columns (at least ``min_cols``).
    """
    if not rows:
        return np.zeros((0, min_cols))
    ncols = len(rows[0][1])
    for lineno, toks in rows:
        if len(toks) != ncols:
            raise fail(
                path,
                f"line {lineno}: {what} row has {len(toks)} values, the first row has {ncols}",
            )
    if ncols < min_cols:
        raise fail(
            path, f"line {rows[0][0]}: {what} rows need at least {min_cols} values, found {ncols}"
        )
    flat = [t for _, toks in rows for t in toks]
    arr = strict_floats(flat)
    if arr is None:
        for lineno, toks in rows:
            for t in toks:
                if not is_number(t):
                    raise fail(path, f"line {lineno}: {t[:40]!r} is not a number")
        raise fail(path, f"{what} rows hold values that are not numbers")
    return arr.reshape(len(rows), ncols)


def is_number(token: str) -> bool:
    """Whether ``token`` is a number as numpy's text parsers read one: ASCII digits, an
    optional sign, point and exponent, or ``nan`` / ``inf``. Python's ``float`` also
    takes ``1_00`` (100) and non-ASCII digits; a table holding them is refused instead."""
    if not token.isascii() or "_" in token:
        return False
    try:
        float(token)
    except ValueError:
        return False
    return True


def strict_float(token: str) -> float:
    """``float(token)`` for a token :func:`is_number` accepts; ``ValueError`` otherwise."""
    if not is_number(token):
        raise ValueError(f"not a number: {token[:40]!r}")
    return float(token)


def strict_floats(tokens: Sequence[str]) -> np.ndarray | None:
    """``tokens`` as float64 if every one passes :func:`is_number`, else ``None`` (one
    bulk conversion; the character checks run on the joined text)."""
    joined = " ".join(tokens)
    if not joined.isascii() or "_" in joined:
        return None
    try:
        return np.array(tokens, dtype=np.float64)
    except ValueError:
        return None


def all_numbers(tokens: list[str]) -> bool:
    return all(is_number(t) for t in tokens)


def check_finite(arr: np.ndarray, path: Path, field: str, index_name: str = "shape") -> None:
    """Raise if ``arr`` holds NaN or infinity, naming the first bad sample."""
    bad = ~np.isfinite(arr)
    if bad.any():
        where = np.argwhere(bad)[0]
        raise DataError(
            f"{path}: {field} holds {int(bad.sum())} non-finite value(s) (NaN or inf); "
            f"first at {index_name} index {tuple(int(i) for i in where)}"
        )


def parse_float_table(text: str, path: Path, ncols: int, sep: str | None, what: str) -> np.ndarray:
    """Parse a table of numbers (one row per line) into a ``(rows, ncols)`` float32 array.

    Uses numpy's C parser (``np.loadtxt``), which checks that every row has the same
    number of fields; on failure the offending row is located and named.

    Args:
        text: the file's content.
        path: the file (for messages).
        ncols: required number of columns on every row.
        sep: ``","`` for comma-separated rows, ``None`` for whitespace-separated.
        what: a short description used in messages.
    """
    if not text.strip():
        raise DataError(f"{path}: the {what} file holds no rows")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = np.loadtxt(
                io.StringIO(text), dtype=np.float64, delimiter=sep, ndmin=2, comments=None
            )
    except (ValueError, TypeError, IndexError) as exc:
        _diagnose_rows(text, path, ncols, sep, what)
        raise DataError(f"{path}: cannot parse the {what} file: {first_line(exc)}") from exc
    if table.shape[1] != ncols:
        _diagnose_rows(text, path, ncols, sep, what)
        raise DataError(f"{path}: the {what} file has {table.shape[1]} columns, expected {ncols}")
    check_finite(table, path, f"the {what} values", index_name="(row, column)")
    return table.astype(np.float32)


def _diagnose_rows(text: str, path: Path, ncols: int, sep: str | None, what: str) -> None:
    """Raise a DataError naming the first malformed row (returns if none is found)."""
    for i, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        fields = line.split(",") if sep == "," else line.split()
        if len(fields) != ncols:
            raise DataError(
                f"{path}: row {i + 1} of the {what} file has {len(fields)} fields, "
                f"expected {ncols}: {line.strip()[:80]!r}"
            )
        for field in fields:
            if not is_number(field.strip()):
                raise DataError(
                    f"{path}: row {i + 1} of the {what} file holds {field.strip()[:40]!r}, "
                    f"which is not a number"
                )


def ragged_rows(rows: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows of whitespace-separated numbers of varying length, parsed in one pass.

    Returns ``(values, offsets)``: float64 ``values`` of every row one after the other and
    ``offsets`` ``(len(rows) + 1,)`` with row ``i`` at ``values[offsets[i]:offsets[i + 1]]``;
    ``None`` when a token is not a number (the caller then names the line).
    """
    if not rows:
        return np.zeros(0), np.zeros(1, dtype=np.int64)
    # "nan" between rows marks their ends; a row that itself holds "nan" is not valid
    # where this is used (indices, counts), and the count check below catches it.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy warns (not raises) on a bad token
            flat = np.fromstring(" nan ".join(rows), dtype=np.float64, sep=" ")
    except (ValueError, DeprecationWarning):
        return None
    ends = np.flatnonzero(np.isnan(flat))
    if len(ends) != len(rows) - 1:
        return None
    # values: everything but the markers; offsets: marker k ends row k, k markers precede it
    values = np.delete(flat, ends)
    bounds = ends - np.arange(len(ends))
    offsets = np.concatenate([[0], bounds, [len(values)]]).astype(np.int64)
    return values, offsets


def whole_numbers(values: np.ndarray) -> np.ndarray | None:
    """``values`` as int64 if every one is a whole number within +-2^53, else ``None``."""
    if values.size and (
        not np.all(np.isfinite(values))
        or np.any(np.abs(values) > 2**53)
        or np.any(values != np.round(values))
    ):
        return None
    return values.astype(np.int64)


def leading_columns(
    path: Path, rows: Sequence[str], ncols: int, line_of: Callable[[int], int], what: str
) -> np.ndarray:
    """The first ``ncols`` numbers of every row (rows may be wider, and of varying width).

    Args:
        path: the file (for messages).
        rows: the text rows.
        ncols: how many leading numbers to keep.
        line_of: maps a row index to its line number in the file (called on errors only).
        what: what a row is, for messages (``"vertex"``).

    Returns:
        ``(len(rows), ncols)`` float64.
    """
    parsed = ragged_rows(rows)
    if parsed is not None:
        values, offsets = parsed
        width = np.diff(offsets)
        if np.all(width >= ncols):  # rows may be wider (vertex colours on some)
            if len(rows) and np.all(width == width[0]):
                return values.reshape(len(rows), -1)[:, :ncols]
            return values[offsets[:-1, None] + np.arange(ncols)]
    arr = fast_table(rows)  # rows holding "nan", comments
    if arr is not None and arr.shape[1] >= ncols:
        return arr[:, :ncols]
    heads = []
    for k, row in enumerate(rows):
        toks = row.split()
        if len(toks) < ncols:
            raise fail(
                path, f"line {line_of(k)}: {what} needs {ncols} coordinates, got {len(toks)}"
            )
        heads.append(toks[:ncols])
    arr = strict_floats([t for toks in heads for t in toks])
    if arr is None:
        for k, toks in enumerate(heads):
            bad = next((t for t in toks if not is_number(t)), None)
            if bad is not None:
                raise fail(path, f"line {line_of(k)}: {bad[:40]!r} is not a number")
        raise fail(path, f"{what} rows hold values that are not numbers")
    return arr.reshape(len(rows), ncols)


def uniform_table(rows: Sequence[str], ncols: int) -> np.ndarray | None:
    """``(len(rows), ncols)`` float64 if every row holds exactly ``ncols`` numbers, else
    ``None`` (one ``np.fromstring`` pass: faster than ``np.loadtxt`` on a list of lines)."""
    parsed = ragged_rows(rows)
    if parsed is None or not len(rows):
        return None
    values, offsets = parsed
    if not np.all(np.diff(offsets) == ncols):
        return None
    return values.reshape(len(rows), ncols)
