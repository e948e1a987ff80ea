"""Atomic writes and safe reads of torch files.

``atomic_torch_save`` writes through :func:`pointea.files.atomic_write`: a temporary file
in the destination folder, flushed and fsynced, then renamed over the destination, so a
reader (or a run killed mid-write) sees either the old complete file or the new complete
file, never a partial one.

``safe_torch_load`` only ever unpickles with ``weights_only=True``: tensors, numbers,
strings, lists, tuples and dicts. A file carrying code is refused with a
:class:`~pointea.errors.CheckpointError` naming the file.
"""

from __future__ import annotations

import errno
import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError
from .files import atomic_write

__all__ = ["atomic_torch_save", "safe_torch_load"]


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
