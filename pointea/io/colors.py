"""Colour values to floats in ``[0, 1]``: one rule for every reader, never a silent guess.

Files store colours either as 0..255 or as 0..1 floats, and nothing in most formats says
which. :func:`unit_colors` decides from the data type first and the whole range second:

====================================================  ==========================================
values                                                read as
====================================================  ==========================================
an integer type (PLY ``uchar`` / ``int``, PCD          0..255 (a warning when every value is 0
packed ``rgb``, ``.npy`` integers, text written         or 1: a very dark scan, or 0..1 colours
without a point or exponent)                           written as integers)
floats, maximum at most 1                              0..1
floats, maximum in ``(1, 1 + UNIT_MARGIN]``            0..1, clipped to 1, with a warning
floats, every value whole, maximum above that          0..255
floats with fractions, maximum at least                0..255
``DARK_255_BELOW``
floats with fractions, maximum in                      refused: too bright for 0..1, too dark
``(1 + UNIT_MARGIN, DARK_255_BELOW)``                  for 0..255
====================================================  ==========================================

A value that is not finite, is negative or is above 255 is refused. The caller may say
the scale (``scale="1"`` or ``"255"``, ``pointea-predict --colour-scale``); then only the
range is checked (0..1 colours may still overshoot by ``UNIT_MARGIN``, clipped with a
warning). Warnings (:class:`ColourScaleWarning`) and errors name the file, the colour
field and, for a value out of range, its line (text files) or point index.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Literal, get_args

import numpy as np

from ..errors import InputError
from .files import display_name, fail

__all__ = [
    "ColourScale",
    "COLOUR_SCALES",
    "UNIT_MARGIN",
    "DARK_255_BELOW",
    "ColourScaleWarning",
    "check_colour_scale",
    "unit_colors",
]

ColourScale = Literal["auto", "1", "255"]
COLOUR_SCALES: tuple[str, ...] = get_args(ColourScale)
#: 0..1 colours may exceed 1 by this much (exporters' rounding); they are clipped to 1
UNIT_MARGIN = 0.05
#: fractional colours whose maximum lies between ``1 + UNIT_MARGIN`` and this are refused
DARK_255_BELOW = 2.0


class ColourScaleWarning(UserWarning):
    """A file's colour scale was decided with a doubt, or its values were clipped (file
    and colour fields named in the message)."""


def check_colour_scale(scale: str | int) -> ColourScale:
    """``scale`` as one of :data:`COLOUR_SCALES` (``1`` and ``255`` may be given as ints)."""
    text = str(scale)
    if text not in COLOUR_SCALES:
        raise InputError(f"colour_scale must be one of {', '.join(COLOUR_SCALES)}, got {scale!r}")
    return text  # type: ignore[return-value]


def unit_colors(
    values: np.ndarray,
    source: str | os.PathLike,
    *,
    fields: Sequence[str] = ("red", "green", "blue"),
    integer: bool = False,
    scale: str | int = "auto",
    line_of: Callable[[int], int] | None = None,
) -> np.ndarray:
    """Colour values ``(N, 3)`` as float64 in ``[0, 1]`` (the rule is in the module doc).

    Args:
        values: the raw values, one column per colour field.
        source: the file, for messages.
        fields: how the file names each column (``"column 4"``, ``"property red"``).
        integer: the values were stored as integers (a PLY ``uchar``, text without a point).
        scale: ``"auto"``, ``"1"`` or ``"255"``.
        line_of: maps a row to its line in the file (text formats), for messages;
            without it a point index is named.

    Raises:
        DataError: a value is not finite, negative, or above what the scale allows; or, in
            ``"auto"``, the scale cannot be told.
        InputError: ``scale`` is not one of :data:`COLOUR_SCALES`.
    """
    scale = check_colour_scale(scale)
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim != 2 or vals.shape[1] != len(fields):
        raise InputError(f"expected ({len(fields)},) colour values per point, got {vals.shape}")
    top = 1.0 + UNIT_MARGIN if scale == "1" else 255.0
    bad = ~np.isfinite(vals) | (vals < 0) | (vals > top)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        where = f"line {line_of(row)}" if line_of is not None else f"point index {row}"
        allowed = (
            f"0..1 (colour_scale {scale}; up to {top:g} is clipped)"
            if scale == "1"
            else "0..255, or 0..1 floats"
        )
        raise fail(
            source,
            f"{where}: colour {fields[col]} = {vals[row, col]:g} is outside {allowed} "
            f"({int(bad.any(axis=1).sum())} points affected)",
        )
    if not vals.size:
        return vals
    if scale == "auto":
        scale = _auto_scale(vals, source, fields, integer)
    if scale == "255":
        return vals / 255.0
    if vals.max() > 1.0:
        over = vals > 1.0
        _warn(
            source,
            f"{_names(fields, over.any(axis=0))} exceed 1 ({int(over.any(axis=1).sum())} points, "
            f"up to {vals.max():g}); read as 0..1 colours and clipped to 1",
        )
        vals = np.minimum(vals, 1.0)
    return vals


def _auto_scale(
    vals: np.ndarray, source: str | os.PathLike, fields: Sequence[str], integer: bool
) -> ColourScale:
    top = float(vals.max())
    if integer:
        if top <= 1.0:
            _warn(
                source,
                f"every colour value ({_names(fields)}) is 0 or 1, written as integers; read "
                f"as 0..255 (nearly black). If they are 0..1 colours, pass colour_scale='1' "
                f"(pointea-predict --colour-scale 1)",
            )
        return "255"
    if top <= 1.0 + UNIT_MARGIN:
        return "1"
    if np.all(vals == np.round(vals)) or top >= DARK_255_BELOW:
        return "255"
    raise fail(
        source,
        f"cannot tell the colour scale of {_names(fields)}: values up to {top:g} with "
        f"fractions are too bright for 0..1 colours and nearly black as 0..255; pass "
        f"colour_scale='1' or '255' (pointea-predict --colour-scale 1 or 255)",
    )


def _names(fields: Sequence[str], which: np.ndarray | None = None) -> str:
    chosen = [f for k, f in enumerate(fields) if which is None or which[k]]
    return ", ".join(chosen)


def _warn(source: str | os.PathLike, message: str) -> None:
    warnings.warn(f"{display_name(source)}: {message}", ColourScaleWarning, stacklevel=4)
