"""A temporary file that holds rows of a tensor between two passes over a large cloud.

Streaming inference (:mod:`pointea.models.streaming`) computes a per-point quantity in
one pass and needs it again in a later one. When it does not fit the memory budget it is
written to this file with plain ``write`` calls and read back chunk by chunk with
``readinto`` into a reused buffer: the file is not memory-mapped, so it never counts
towards the process's resident memory. The operating system's page cache may keep its
pages in otherwise free RAM (then reading it back costs a memory copy, not a disk
read); under memory pressure the kernel writes them to disk and drops them instead of
failing the process.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch
from torch import Tensor

from ..errors import DataError, InputError

__all__ = ["SpillFile", "spill_space"]


def spill_space(directory: str | os.PathLike | None) -> int:
    """Free bytes in ``directory`` (the system's temporary folder when ``None``)."""
    folder = Path(tempfile.gettempdir() if directory is None else directory)
    if not folder.is_dir():
        raise InputError(f"spill_dir: {str(folder)!r} is not an existing folder")
    return shutil.disk_usage(folder).free


class SpillFile:
    """Rows of one shape and dtype written in order, then read back in the same order.

    Use as a context manager: the file is created in ``directory`` on entry and its
    name removed at once, so only the open handle keeps it (POSIX semantics): its space
    returns to the disk when the handle is closed on exit, or when the process ends in
    any way, SIGKILL included. ``path`` keeps the name for messages. Where an open file
    cannot be removed (Windows), the name is removed on exit instead.

    Args:
        directory: where to create the file (``None``: the system's temporary folder).
        row_shape: the shape of one row (``(512,)`` for a 512-wide feature).
        dtype: the rows' dtype (any: rows are stored as their raw bytes).
        capacity: the most rows written at once (size of the host buffer on a GPU).
    """

    def __init__(
        self,
        directory: str | os.PathLike | None,
        row_shape: tuple[int, ...],
        dtype: torch.dtype,
        capacity: int,
    ) -> None:
        spill_space(directory)  # checks the folder
        self.directory = directory
        self.row_shape, self.dtype, self.capacity = tuple(row_shape), dtype, capacity
        self.path: Path | None = None
        self._file = None
        self._host: Tensor | None = None
        self._unlinked = False
        self.rows_written = 0

    def __enter__(self) -> SpillFile:
        fd, name = tempfile.mkstemp(prefix="pointea-spill-", suffix=".bin", dir=self.directory)
        self.path = Path(name)
        try:
            self._file = open(fd, "w+b")  # noqa: SIM115 - closed in __exit__
        except BaseException:
            os.close(fd)
            self.path.unlink(missing_ok=True)
            raise
        try:  # nothing on disk outlives the handle, whatever ends the process
            self.path.unlink()
            self._unlinked = True
        except OSError:  # a platform that cannot remove an open file: on exit then
            self._unlinked = False
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self._file is not None:
                self._file.close()
        finally:
            if self.path is not None and not self._unlinked:
                self.path.unlink(missing_ok=True)
            self._file = None

    def _bytes(self, rows: Tensor) -> memoryview:
        """The raw bytes of ``rows`` (a CPU tensor) as a writable buffer."""
        return memoryview(rows.contiguous().view(-1).view(torch.uint8).numpy())

    def _host_rows(self, count: int, device: torch.device) -> Tensor:
        """The first ``count`` rows of the host staging buffer for rows on ``device``,
        in page-locked memory for CUDA (its copies then run at full bus speed)."""
        if self._host is None:
            self._host = torch.empty(
                self.capacity, *self.row_shape, dtype=self.dtype, pin_memory=device.type == "cuda"
            )
        return self._host[:count]

    def write(self, rows: Tensor) -> None:
        """Append ``rows`` ``(m, *row_shape)`` (any device) to the file."""
        if rows.shape[1:] != self.row_shape or rows.dtype != self.dtype:
            raise InputError(
                f"rows: expected (m, {self.row_shape}) {self.dtype}, got "
                f"{tuple(rows.shape)} {rows.dtype}"
            )
        if rows.device.type != "cpu":
            rows = self._host_rows(rows.size(0), rows.device).copy_(rows)
        try:
            self._file.write(self._bytes(rows))
        except OSError as e:  # a full disk, mostly: say which file and what to do
            raise OSError(
                e.errno,
                f"{self.path}: writing the spill file failed ({e.strerror}); free space "
                "there, choose another spill_dir, or pass spill=False",
            ) from e
        self.rows_written += rows.size(0)

    def rewind(self) -> None:
        """Start reading from the first row written."""
        self._file.flush()
        self._file.seek(0)

    def read_into(self, out: Tensor) -> Tensor:
        """Fill ``out`` ``(m, *row_shape)`` (any device, contiguous) with the next ``m`` rows."""
        if not out.is_contiguous():
            raise InputError("out: the buffer to read spilled rows into must be contiguous")
        target = out if out.device.type == "cpu" else self._host_rows(out.size(0), out.device)
        buf = self._bytes(target)
        got = self._file.readinto(buf)
        if got != buf.nbytes:
            raise DataError(
                f"{self.path}: the spill file ended after {got} of {buf.nbytes} bytes "
                "(deleted or truncated while in use?)"
            )
        if target is not out:
            out.copy_(target)
        return out
