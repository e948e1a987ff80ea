"""Checked readers for the small files the published archives are made of.

What is here is specific to the published datasets (line lists, JSON split lists, label
arrays); the generic pieces (opening files, HDF5 arrays, float tables) live in
:mod:`pointea.io` and are shared with the readers of users' files. Every function turns a
problem with a file (missing, empty, not UTF-8, malformed JSON, a wrong shape or dtype,
non-finite numbers, labels out of range) into a :class:`~pointea.errors.DataError` whose
message names the file, the field and what was wrong, so no bare traceback from json or
numpy reaches the user.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io.files import read_text
from ..io.tables import check_finite

__all__ = [
    "read_lines",
    "read_json_list",
    "check_labels",
    "to_int64_labels",
]


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
