"""Checked readers for the small files the published archives are made of.

Every function here turns a problem with a file (missing, empty, not UTF-8, malformed
JSON, a truncated or corrupt HDF5 file, a missing key, a wrong shape or dtype, non-finite
numbers, labels out of range) into a :class:`~pointea.errors.DataError` whose message names
the file, the field and what was wrong. The dataset readers call only these, so no bare
traceback from h5py, json or numpy reaches the user.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, DatasetNotFoundError

__all__ = [
    "require_file",
    "read_text",
    "read_lines",
    "read_json_list",
    "open_h5",
    "h5_array",
    "check_finite",
    "check_labels",
    "to_int64_labels",
    "parse_float_table",
]


def require_file(path: Path, what: str, hint: str = "") -> Path:
    """Return ``path`` if it is a regular, non-empty file, else raise naming ``what``."""
    if not path.exists():
        msg = f"{path}: missing {what}"
        raise DatasetNotFoundError(f"{msg}. {hint}".strip() if hint else msg)
    if path.is_dir():
        raise DataError(f"{path}: expected the {what} file, found a folder")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the {what} file is empty")
    return path


def read_text(path: Path, what: str, hint: str = "") -> str:
    """Read a whole text file (UTF-8) with clear errors."""
    require_file(path, what, hint)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: the {what} file is not UTF-8 text (byte {exc.start} is "
            f"{exc.object[exc.start : exc.start + 1]!r}); is it a binary or corrupt file?"
        ) from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read the {what} file: {exc.strerror or exc}") from exc


def read_lines(path: Path, what: str, hint: str = "") -> list[str]:
    """Non-blank lines of a text file, stripped; raises if there are none."""
    lines = [ln.strip() for ln in read_text(path, what, hint).splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise DataError(f"{path}: the {what} file holds only blank lines")
    return lines


def read_json_list(path: Path, what: str, hint: str = "") -> list[str]:
    """A JSON file holding a list of strings (the ShapeNetPart split lists)."""
    text = read_text(path, what, hint)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: malformed JSON in the {what} file at line {exc.lineno}, "
            f"column {exc.colno}: {exc.msg}"
        ) from exc
    except RecursionError as exc:
        raise DataError(f"{path}: the {what} file nests JSON too deeply to be a list") from exc
    if not isinstance(value, list):
        raise DataError(
            f"{path}: the {what} file must hold a JSON list of strings, "
            f"found a {type(value).__name__}"
        )
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise DataError(
                f"{path}: entry {i} of the {what} list must be a string, "
                f"found {type(item).__name__} {item!r:.60}"
            )
    return value


@contextlib.contextmanager
def open_h5(path: Path, what: str = "HDF5 data") -> Iterator[Any]:
    """Open an HDF5 file read-only; a missing, empty, truncated or corrupt file raises."""
    import h5py

    require_file(path, what)
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError, RuntimeError) as exc:
        raise DataError(
            f"{path}: not a readable HDF5 file (corrupt or truncated?): {_first_line(exc)}"
        ) from exc
    try:
        yield f
    except DataError:
        raise
    except (
        OSError,
        RuntimeError,
        ValueError,
        KeyError,
        TypeError,
        IndexError,
        AttributeError,
        OverflowError,
        SystemError,
    ) as exc:
        # damaged metadata surfaces from deep inside h5py while keys / shapes are read
        raise DataError(f"{path}: corrupt HDF5 file (reading failed: {_first_line(exc)})") from exc
    finally:
        with contextlib.suppress(Exception):
            f.close()


def h5_array(
    f: Any,
    path: Path,
    key: str,
    *,
    ndim: int,
    tail: Sequence[int | None] = (),
    kinds: str = "f",
) -> np.ndarray:
    """Read dataset ``key`` of an open HDF5 file fully into memory, checking it.

    Args:
        f: an open ``h5py.File``.
        path: the file's path (for messages).
        key: the dataset name, e.g. ``"data"``.
        ndim: required number of dimensions.
        tail: required sizes of the trailing dimensions (``None`` = any size).
        kinds: accepted numpy dtype kinds (``"f"`` float, ``"iu"`` integers).
    """
    import h5py

    if key not in f:
        raise DataError(f"{path}: missing HDF5 key {key!r} (the file holds {sorted(f.keys())})")
    ds = f[key]
    if not isinstance(ds, h5py.Dataset):
        raise DataError(f"{path}: HDF5 key {key!r} is a group, expected an array")
    kind = ds.dtype.kind
    if kind not in kinds:
        want = {"f": "floating point", "iu": "integer", "u": "unsigned integer"}.get(kinds, kinds)
        raise DataError(f"{path}: HDF5 key {key!r} has dtype {ds.dtype}, expected {want}")
    shape = tuple(ds.shape)
    if len(shape) != ndim or any(
        t is not None and s != t for s, t in zip(shape[ndim - len(tail) :], tail, strict=True)
    ):
        want_shape = (
            ("n",) + ("?",) * (ndim - 1 - len(tail)) + tuple("?" if t is None else t for t in tail)
        )
        raise DataError(
            f"{path}: HDF5 key {key!r} has shape {shape}, expected "
            f"({', '.join(str(s) for s in want_shape)})"
        )
    try:
        arr = ds[()]
    except (OSError, ValueError, RuntimeError, TypeError) as exc:
        raise DataError(
            f"{path}: cannot read HDF5 key {key!r} (truncated or corrupt file?): {_first_line(exc)}"
        ) from exc
    return np.asarray(arr)


def check_finite(arr: np.ndarray, path: Path, field: str, index_name: str = "shape") -> None:
    """Raise if ``arr`` holds NaN or infinity, naming the first bad sample."""
    bad = ~np.isfinite(arr)
    if bad.any():
        where = np.argwhere(bad)[0]
        raise DataError(
            f"{path}: {field} holds {int(bad.sum())} non-finite value(s) (NaN or inf); "
            f"first at {index_name} index {tuple(int(i) for i in where)}"
        )


def to_int64_labels(arr: np.ndarray, path: Path, field: str) -> np.ndarray:
    """Integer labels of any integer dtype (or whole-number floats) as int64."""
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f":
        check_finite(arr, path, field)
        if not np.all(arr == np.round(arr)):
            raise DataError(f"{path}: {field} must hold whole numbers, found fractional values")
        return arr.astype(np.int64)
    raise DataError(f"{path}: {field} has dtype {arr.dtype}, expected integers")


def check_labels(labels: np.ndarray, num: int, path: Path, field: str) -> None:
    """Raise if any of ``labels`` lies outside ``[0, num)``."""
    if labels.size == 0:
        return
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num:
        bad = labels[(labels < 0) | (labels >= num)]
        raise DataError(
            f"{path}: {field} out of range: found {int(bad[0])} "
            f"({bad.size} bad value(s)); valid values are 0..{num - 1}"
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
        raise DataError(f"{path}: cannot parse the {what} file: {_first_line(exc)}") from exc
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
            try:
                float(field)
            except ValueError:
                raise DataError(
                    f"{path}: row {i + 1} of the {what} file holds {field.strip()[:40]!r}, "
                    f"which is not a number"
                ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
