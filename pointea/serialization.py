"""Atomic writes and safe reads of torch files.

``atomic_torch_save`` writes to a temporary file in the destination folder, flushes and
fsyncs it, then renames it over the destination: a reader (or a run killed mid-write)
sees either the old complete file or the new complete file, never a partial one.

``safe_torch_load`` only ever unpickles with ``weights_only=True``: tensors, numbers,
strings, lists, tuples and dicts. A file carrying code is refused with a
:class:`~pointea.errors.CheckpointError` naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from .errors import CheckpointError

__all__ = ["atomic_write", "atomic_torch_save", "safe_torch_load"]


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(f)`` on a temporary file next to ``path``, then move it into place.

    Raises :class:`OSError` (disk full, folder not writable) with the destination named;
    the previous file at ``path``, if any, is left untouched in that case.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OSError(exc.errno, f"could not write {path}: {exc.strerror or exc}") from exc
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` made atomic (see module docstring)."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def safe_torch_load(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Load a torch file with ``weights_only=True``; clear errors for every failure."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, expected a checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:  # permission denied, I/O error: the content is not the problem
        raise CheckpointError(f"{path}: cannot read the file: {exc.strerror or exc}") from exc
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle_errors() as exc:
        if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EIO):
            raise CheckpointError(f"{path}: cannot read the file: {exc.strerror or exc}") from exc
        text = str(exc)
        # torch words a refused global "Unsupported global" or "unsupported GLOBAL"
        lower = text.lower()
        detail = next(
            (ln.strip() for ln in text.splitlines() if "unsupported global" in ln.lower()), ""
        )
        code_refused = "unsupported global" in lower or "unsupported operand" in lower
        if code_refused and zipfile.is_zipfile(path):
            raise CheckpointError(
                f"{path}: refused to load: the file contains Python objects other than "
                f"tensors and plain values (it may carry code). pointea only loads "
                f"checkpoints with weights_only=True." + (f" ({detail})" if detail else "")
            ) from exc
        raise CheckpointError(
            f"{path}: not a readable torch checkpoint (corrupt or truncated, or not a file "
            f"written by torch.save)"
        ) from exc


def pickle_errors() -> tuple[type[BaseException], ...]:
    import pickle

    return (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
        AttributeError,
        IndexError,
        KeyError,
        TypeError,
        UnicodeDecodeError,
        OSError,
    )
