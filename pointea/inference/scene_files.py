"""Scene files for whole-room segmentation: points with colours in, labelled points out.

A scene segmenter (``pct_semseg*``, trained by ``pointea-semseg``) reads xyz and rgb of
every point, so a scene file must carry colours. :func:`read_scene` accepts:

==========================  ==============================================================
file                        read as
==========================  ==============================================================
``.txt .xyz``               rows ``x y z r g b [label]`` (S3DIS rows; spaces, commas or
                            semicolons; an optional header row; ``//``/``#`` comments)
``.pts``                    as ``.txt``; 7 columns are Leica ``x y z intensity r g b``
``.npy``                    an ``(N, 6)`` or ``(N, 7)`` array ``x y z r g b [label]``
                            (PointNet's preprocessed S3DIS rooms are ``(N, 7)``)
``.ply``                    vertices with ``red green blue`` (or ``r g b``), optional
                            ``label`` / ``class`` / ``scalar_label``; a mesh's vertices
``.pcd``                    with a packed ``rgb`` / ``rgba`` field, optional ``label``
==========================  ==============================================================

Colours: the scale is decided by :func:`pointea.io.colors.unit_colors`, the rule of every
reader (integer data are 0..255; floats up to 1 are 0..1; a doubt is a warning, a scale
that cannot be told is a :class:`DataError`), or said with ``colour_scale``. A colour
below 0, above 255, or not finite is a :class:`DataError` naming the file, the line (text)
or point index, and the column. A label column
is kept as the ground truth when it holds whole class ids the model knows; otherwise it
is ignored with a warning.

:func:`write_scene_labels` writes the prediction: ``.ply`` (class colours in
``red green blue`` and an int ``label`` property, what CloudCompare shows as a scalar
field and open3d shows coloured), ``.txt`` / ``.xyz`` (rows ``x y z r g b label`` with the
input's colours, the S3DIS row plus a label column, after a ``#`` line naming pointea;
readable back here) or ``.npy``
(the ``(N,)`` int64 labels in input order).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, InputError
from ..io import PointCloud, check_points, read_point_cloud
from ..io.colors import ColourScale, unit_colors
from ..io.files import decode_text, fail, read_bytes, require_file
from ..io.readers import guard_parse
from ..io.tables import COMMENTS, parse_float_rows
from ..io.text import TextTable, read_text_rows

__all__ = [
    "SCENE_EXTENSIONS",
    "LABEL_EXTENSIONS",
    "expand_scene_inputs",
    "read_scene",
    "read_truth",
    "scene_colors",
    "write_scene_labels",
]

SCENE_EXTENSIONS: tuple[str, ...] = (".ply", ".txt", ".xyz", ".pts", ".npy", ".pcd")
LABEL_EXTENSIONS: tuple[str, ...] = (".ply", ".txt", ".xyz", ".npy")
_COLOR_NAMES = ("r", "g", "b")
_H5_ENTRY = re.compile(r"^.+\.(?:h5|hdf5)[:#]-?\d+$", re.IGNORECASE)


def _no_colors(path: Path, found: str) -> DataError:
    return fail(
        path,
        f"{found}; a scene segmenter reads the colour of every point (it was trained on "
        f"x y z r g b), so the file needs colours: rows x y z r g b [label] (.txt .xyz .pts "
        f".npy) or PLY vertex properties red green blue",
    )


def scene_colors(
    values: np.ndarray,
    source: str | os.PathLike,
    *,
    integer: bool = False,
    colour_scale: ColourScale = "auto",
) -> np.ndarray:
    """Colour columns ``(N, 3)`` as float64 in [0, 1] (:func:`pointea.io.colors.unit_colors`;
    ``integer``: the values come from an integer type)."""
    return unit_colors(values, source, fields=_COLOR_NAMES, integer=integer, scale=colour_scale)


def _class_ids(
    values: np.ndarray, source: str | os.PathLike, num_classes: int | None, column: str
) -> np.ndarray | None:
    """Whole class ids in ``[0, num_classes)``, else ``None`` with a warning saying why."""
    vals = np.asarray(values, dtype=np.float64)
    problem = ""
    if not np.all(np.isfinite(vals)) or np.any(vals != np.round(vals)):
        problem = "holds values that are not whole numbers"
    elif vals.size and vals.min() < 0:
        problem = f"holds {vals.min():g}, below 0"
    elif num_classes is not None and vals.size and vals.max() >= num_classes:
        problem = (
            f"holds {vals.max():g}; the model has {num_classes} classes (0..{num_classes - 1})"
        )
    if problem:
        warnings.warn(
            f"{source}: {column} {problem}: not read as the ground truth (no metrics)",
            stacklevel=3,
        )
        return None
    return vals.astype(np.int64)


def _from_columns(
    path: Path,
    table: np.ndarray | TextTable,
    num_classes: int | None,
    *,
    integer: bool = False,
    colour_scale: ColourScale = "auto",
) -> PointCloud:
    """``x y z r g b [label]`` (Leica ``.pts``: ``x y z intensity r g b``)."""
    text, table = (table, table.values) if isinstance(table, TextTable) else (None, table)
    ncols = table.shape[1] if table.ndim == 2 else 0
    leica = path.suffix.lower() == ".pts" and ncols == 7
    if ncols in (3, 4):
        raise _no_colors(path, f"rows have {ncols} columns (x y z{' + one more' * (ncols == 4)})")
    if ncols not in (6, 7):
        raise fail(
            path,
            f"rows have {ncols} columns; a scene file has x y z r g b (6) or "
            f"x y z r g b label (7) (.pts: x y z intensity r g b)",
        )
    rgb_cols = slice(4, 7) if leica else slice(3, 6)
    cloud = PointCloud(points=np.asarray(table[:, :3], np.float64), source=str(path))
    if text is not None:
        cloud.colors, cloud.line_of = text.colors(rgb_cols, colour_scale), text.line_of
    else:
        cloud.colors = scene_colors(
            table[:, rgb_cols], path, integer=integer, colour_scale=colour_scale
        )
    if ncols == 7 and not leica:
        cloud.labels = _class_ids(table[:, 6], path, num_classes, "column 7 (label)")
    return cloud


def _read_npy(path: Path, num_classes: int | None, colour_scale: ColourScale) -> PointCloud:
    require_file(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise fail(path, f"not a readable .npy array ({str(exc)[:120]})") from exc
    if not isinstance(arr, np.ndarray) or arr.ndim != 2:
        raise fail(
            path,
            f"expected a (N, 6) or (N, 7) array x y z r g b [label], got shape "
            f"{tuple(getattr(arr, 'shape', ()))}",
        )
    if arr.dtype.kind not in "iuf":
        raise fail(path, f"expected a numeric array, got dtype {arr.dtype}")
    if len(arr) == 0:
        raise fail(path, "the point cloud is empty (0 points)")
    return _from_columns(
        path, arr, num_classes, integer=arr.dtype.kind in "iu", colour_scale=colour_scale
    )


def read_scene(
    path: str | os.PathLike,
    *,
    num_classes: int | None = None,
    drop_nonfinite: bool = False,
    colour_scale: ColourScale = "auto",
) -> PointCloud:
    """Read a scene with a colour per point (see the module docstring for the formats).

    Args:
        path: the file.
        num_classes: the model's classes; a label column outside ``0..num_classes-1``
            is not used as the ground truth.
        drop_nonfinite: drop points with NaN / inf coordinates (with a warning).
        colour_scale: ``"auto"``, ``"1"`` or ``"255"`` (module docstring).

    Returns:
        a :class:`~pointea.io.PointCloud` with ``points`` ``(N, 3)`` float64, ``colors``
        ``(N, 3)`` float64 in [0, 1] and ``labels`` ``(N,)`` int64 or ``None``.

    Raises:
        DataError: missing or empty file, unsupported extension, no colours, colours out
            of range, NaN coordinates, malformed rows; the message starts with the file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SCENE_EXTENSIONS:
        raise fail(
            path,
            f"unsupported extension {suffix or '(none)'} for a scene; a scene segmenter reads "
            f"{' '.join(SCENE_EXTENSIONS)} point clouds with colours (meshes: export their "
            f"vertices with colours as .ply)",
        )
    if suffix == ".npy":
        cloud = _read_npy(path, num_classes, colour_scale)
    elif suffix in (".txt", ".xyz", ".pts"):
        require_file(path)
        rows = guard_parse(path, read_text_rows)
        cloud = _from_columns(path, rows, num_classes, colour_scale=colour_scale)
    else:  # .ply / .pcd through pointea.io (a PLY mesh gives its vertices)
        cloud = read_point_cloud(path, check=False, colour_scale=colour_scale)
        if cloud.colors is None:
            raise _no_colors(path, "has no vertex colours")
        if cloud.labels is not None:
            cloud.labels = _class_ids(cloud.labels, path, num_classes, "the label property")
    cloud.source = str(path)
    _check_coordinates(cloud, drop_nonfinite)
    return cloud


def _check_coordinates(cloud: PointCloud, drop_nonfinite: bool) -> None:
    if drop_nonfinite and len(cloud):
        keep = np.isfinite(cloud.points).all(axis=1)
        if not keep.all():
            warnings.warn(
                f"{cloud.source}: dropped {int((~keep).sum())} of {len(keep)} points with "
                f"NaN/inf coordinates",
                stacklevel=3,
            )
            cloud.subset(keep)
            cloud.meta["dropped_nonfinite"] = int((~keep).sum())
    try:
        check_points(cloud.points, cloud.source, line_of=cloud.line_of)
    except DataError as exc:
        if "NaN or infinite" in str(exc):
            raise DataError(f"{exc} (--drop-nonfinite skips such points)") from None
        raise


def read_truth(path: str | os.PathLike, num_points: int, num_classes: int) -> np.ndarray:
    """Per-point class ids from a separate file: ``.npy`` ``(N,)`` or text, one id per
    line (the ``.labels`` files of Semantic3D-style datasets).

    Raises:
        DataError: wrong count, not whole numbers, or ids outside ``0..num_classes-1``.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        require_file(path)
        try:
            vals = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise fail(path, f"not a readable .npy array ({str(exc)[:120]})") from exc
    else:
        table = guard_parse(path, _text_table_any)
        vals = table[:, 0] if table.ndim == 2 and table.shape[1] == 1 else table
    vals = np.asarray(vals)
    if vals.ndim != 1 or vals.dtype.kind not in "iuf":
        raise fail(path, f"expected one class id per point, got shape {tuple(vals.shape)}")
    if len(vals) != num_points:
        raise fail(path, f"holds {len(vals)} labels for the scene's {num_points} points")
    vals = vals.astype(np.float64)
    if not np.all(np.isfinite(vals)) or np.any(vals != np.round(vals)):
        raise fail(path, "labels must be whole numbers")
    if vals.min() < 0 or vals.max() >= num_classes:
        raise fail(
            path,
            f"labels must lie in 0..{num_classes - 1} (the model's classes), found "
            f"{vals.min():g}..{vals.max():g}",
        )
    return vals.astype(np.int64)


def _text_table_any(path: Path) -> np.ndarray:
    """A text table with any number of columns (one label per line)."""
    lines = decode_text(path, read_bytes(path)).splitlines()
    rows = [
        (i + 1, s.split())
        for i, s in enumerate(line.strip() for line in lines)
        if s and not s.startswith(COMMENTS)
    ]
    return parse_float_rows(path, rows, "label", min_cols=1)


def write_scene_labels(
    path: str | os.PathLike,
    cloud: PointCloud,
    labels: np.ndarray,
    class_colors: np.ndarray,
) -> Path:
    """Write a segmented scene; the format follows the extension (module docstring).

    Args:
        path: ``.ply``, ``.txt`` / ``.xyz`` or ``.npy``.
        cloud: the scene as read (its points and colours).
        labels: ``(N,)`` class ids.
        class_colors: ``(num_classes, 3)`` colours in [0, 1] (the ``.ply``'s colours).
    """
    from ..files import atomic_write
    from ..io import write_ply
    from ..outputs import TEXT_MARKER

    path = Path(path)
    suffix = path.suffix.lower()
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) != len(cloud):
        raise InputError(f"labels: {len(labels)} for {len(cloud)} points")
    if suffix == ".ply":
        return write_ply(path, cloud.points, colors=class_colors[labels], labels=labels)
    if suffix == ".npy":
        return atomic_write(path, lambda f: np.save(f, labels))
    if suffix in (".txt", ".xyz"):
        rgb = np.round(np.asarray(cloud.colors) * 255.0).astype(np.int64)
        table = np.column_stack([cloud.points, rgb, labels])
        fmt = "%.6f %.6f %.6f %d %d %d %d"
        head = f"{TEXT_MARKER}: x y z red green blue label\n".encode()  # a comment to readers

        def write(f: Any) -> None:
            f.write(head)
            np.savetxt(f, table, fmt=fmt)

        return atomic_write(path, write)
    raise InputError(
        f"{path}: unsupported output extension {suffix or '(none)'}; use "
        f"{' '.join(LABEL_EXTENSIONS)}"
    )


def expand_scene_inputs(specs: Sequence[str | os.PathLike]) -> Iterator[Path | DataError]:
    """One path per scene named by ``specs``: a file, or every scene file below a
    folder (recursively, sorted). A folder without scene files, or an HDF5 name, yields
    a :class:`DataError` in its place, so the caller can report it and go on."""
    for raw in specs:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SCENE_EXTENSIONS
            )
            if not found:
                yield fail(path, f"the folder holds no scene files ({' '.join(SCENE_EXTENSIONS)})")
            yield from found
        elif path.suffix.lower() in (".h5", ".hdf5") or _H5_ENTRY.match(os.fspath(raw)):
            yield fail(
                path,
                "HDF5 files hold objects (ModelNet40 / ShapeNetPart), not scenes; a scene "
                f"segmenter reads {' '.join(SCENE_EXTENSIONS)} files with colours",
            )
        else:
            yield path
