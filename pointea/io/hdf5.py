"""HDF5 files of the ModelNet40 / ShapeNetPart kind: opening, checked arrays, one entry.

The one place pointea touches h5py. The dataset readers and :func:`read_h5_entry` share
:func:`open_h5` (turns h5py's failures into a :class:`DataError` naming the file) and
:func:`h5_dataset` (checks a dataset's key, dtype, shape and declared size before a byte
of it is read: a 2 KB file may declare a shape of 2e9 points).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .files import display_name, fail, first_line, require_file
from .types import PointCloud

__all__ = [
    "open_h5",
    "h5_dataset",
    "h5_array",
    "h5_num_entries",
    "read_h5_entry",
    "H5_MAX_COMPRESSION",
]

#: Largest ratio of a compressed dataset's declared size to the file's size. gzip on
#: float coordinates gains 1.1-3x; a ratio beyond this is a forged or broken header.
H5_MAX_COMPRESSION = 1024

_H5_ERRORS = (
    OSError,
    RuntimeError,
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    AttributeError,
    OverflowError,
    SystemError,
)


@contextlib.contextmanager
def open_h5(path: str | os.PathLike, what: str = "HDF5 data") -> Iterator[Any]:
    """Open an HDF5 file read-only; a missing, empty, truncated or corrupt file raises.

    Failures of h5py inside the ``with`` block (damaged metadata surfaces while keys and
    shapes are read) and ``MemoryError`` become a :class:`DataError` naming the file.
    """
    import h5py

    path = Path(path)
    require_file(path, what)
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError, RuntimeError) as exc:
        raise fail(
            path, f"not a readable HDF5 file (corrupt or truncated?): {first_line(exc)}"
        ) from exc
    try:
        yield f
    except DataError:
        raise
    except MemoryError:
        raise fail(path, "an HDF5 dataset is too large to read into memory") from None
    except _H5_ERRORS as exc:
        raise fail(path, f"corrupt HDF5 file (reading failed: {first_line(exc)})") from exc
    finally:
        with contextlib.suppress(Exception):
            f.close()


def _check_declared_size(ds: Any, path: Path, key: str) -> None:
    """Refuse a dataset whose declared size the file cannot hold (before reading it)."""
    nbytes = int(np.prod(ds.shape, dtype=object)) * ds.dtype.itemsize
    file_size = path.stat().st_size
    compressed = ds.id.get_create_plist().get_nfilters() > 0
    limit = file_size * H5_MAX_COMPRESSION if compressed else file_size
    if nbytes > max(limit, 1):
        raise fail(
            path,
            f"HDF5 key {key!r} declares shape {tuple(ds.shape)} ({nbytes:,} bytes), more than "
            f"a {file_size:,}-byte file can hold"
            + (f" even compressed {H5_MAX_COMPRESSION}:1" if compressed else "")
            + " (forged or corrupt header)",
        )


def h5_dataset(
    f: Any,
    path: str | os.PathLike,
    key: str,
    *,
    ndim: int,
    tail: Sequence[int | None] = (),
    kinds: str = "f",
) -> Any:
    """Dataset ``key`` of an open HDF5 file, checked but not read.

    Args:
        f: an open ``h5py.File``.
        path: the file's path (for messages).
        key: the dataset name, e.g. ``"data"``.
        ndim: required number of dimensions.
        tail: required sizes of the trailing dimensions (``None`` = any size).
        kinds: accepted numpy dtype kinds (``"f"`` float, ``"iu"`` integers).

    Raises:
        DataError: the key is missing or a group, the dtype or shape is wrong, or the
            declared size exceeds what the file can hold.
    """
    import h5py

    path = Path(path)
    name = display_name(path)
    if key not in f:
        raise DataError(f"{name}: missing HDF5 key {key!r} (the file holds {sorted(f.keys())})")
    ds = f[key]
    if not isinstance(ds, h5py.Dataset):
        raise DataError(f"{name}: HDF5 key {key!r} is a group, expected an array")
    kind = ds.dtype.kind
    if kind not in kinds:
        want = {"f": "floating point", "iu": "integer", "u": "unsigned integer"}.get(kinds, kinds)
        raise DataError(f"{name}: HDF5 key {key!r} has dtype {ds.dtype}, expected {want}")
    shape = tuple(ds.shape)
    if len(shape) != ndim or any(
        t is not None and s != t for s, t in zip(shape[ndim - len(tail) :], tail, strict=True)
    ):
        want_shape = (
            ("n",) + ("?",) * (ndim - 1 - len(tail)) + tuple("?" if t is None else t for t in tail)
        )
        raise DataError(
            f"{name}: HDF5 key {key!r} has shape {shape}, expected "
            f"({', '.join(str(s) for s in want_shape)})"
        )
    _check_declared_size(ds, path, key)
    return ds


def h5_array(f: Any, path: str | os.PathLike, key: str, **checks: Any) -> np.ndarray:
    """Read dataset ``key`` fully into memory after :func:`h5_dataset`'s ``checks``
    (``ndim``, ``tail``, ``kinds``)."""
    ds = h5_dataset(f, path, key, **checks)
    try:
        arr = ds[()]
    except MemoryError:
        raise fail(path, f"HDF5 key {key!r} is too large to read into memory") from None
    except (OSError, ValueError, RuntimeError, TypeError) as exc:
        raise fail(
            path, f"cannot read HDF5 key {key!r} (truncated or corrupt file?): {first_line(exc)}"
        ) from exc
    return np.asarray(arr)


def _points_dataset(f: Any, path: Path) -> Any:
    return h5_dataset(f, path, "data", ndim=3, tail=(None, None), kinds="fiu")


def h5_num_entries(path: str | os.PathLike) -> int:
    """Number of shapes (first dimension of ``data``) in a ModelNet40 / ShapeNetPart file."""
    path = Path(path)
    with open_h5(path) as f:
        data = _points_dataset(f, path)
        if data.shape[2] < 3:
            raise fail(
                path, f"HDF5 'data' has shape {tuple(data.shape)}, expected (shapes, points, 3)"
            )
        return int(data.shape[0])


def read_h5_entry(path: str | os.PathLike, index: int) -> PointCloud:
    """Read entry ``index`` of a ModelNet40 / ShapeNetPart HDF5 file.

    ``label[index]`` (class or category) goes to ``meta["label"]``; ``pid[index]`` (part
    ids, ShapeNetPart) to ``labels``; ``normal[index]`` to ``normals``. Negative indices
    count from the end.
    """
    path = Path(path)
    src = f"{display_name(path)}:{index}"
    try:
        with open_h5(path) as f:
            data = _points_dataset(f, path)
            n, p, c = (int(s) for s in data.shape)
            if c < 3:
                raise fail(path, f"HDF5 'data' has shape {(n, p, c)}, expected (shapes, points, 3)")
            if not -n <= index < n:
                raise fail(
                    path, f"entry {index} does not exist (the file holds {n} shapes, 0..{n - 1})"
                )
            i = index % n
            row = np.asarray(data[i], np.float64)
            cloud = PointCloud(row[:, :3], source=src)
            if c >= 6:  # some exports store x y z nx ny nz in 'data'
                cloud.normals = row[:, 3:6]
            if "label" in f:
                lab = np.asarray(h5_dataset(f, path, "label", ndim=f["label"].ndim, kinds="iuf")[i])
                if lab.size:
                    cloud.meta["label"] = int(lab.reshape(-1)[0])
            if "pid" in f:
                pid = h5_dataset(f, path, "pid", ndim=2, tail=(p,), kinds="iuf")
                cloud.labels = np.asarray(pid[i], np.int64).reshape(-1)
            if "normal" in f:
                nrm = h5_dataset(f, path, "normal", ndim=3, tail=(p, 3), kinds="f")
                cloud.normals = np.asarray(nrm[i], np.float64)
    except DataError:
        raise
    except _H5_ERRORS as exc:
        raise DataError(f"{src}: could not read the HDF5 entry ({first_line(exc)})") from exc
    return cloud
