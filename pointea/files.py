"""Filesystem safety: atomic writes, atomic folder publishing, advisory file locks and
names that are safe to print (the guard that keeps outputs off the user's files is
:mod:`pointea.outputs`).

One implementation of each, used by checkpoints, run folders, dataset downloads, the
synthetic sets and the command-line tools:

* :func:`atomic_write` (and :func:`atomic_write_bytes` / :func:`atomic_write_text` /
  :func:`atomic_write_json`, and :func:`atomic_path` for writers that need a file name):
  the bytes go to a temporary ``.<name>.<random>.tmp`` file in
  the destination folder, are flushed and fsynced, then :func:`os.replace` moves the file
  over the destination and the folder is fsynced. A reader, or a process killed
  mid-write, sees the old complete file or the new complete file, never a partial one.
* :func:`staging_folder` + :func:`publish_folder` (or both at once, :func:`atomic_folder`):
  a folder is built in a hidden temporary folder beside its final place and renamed into
  place only when complete, so an interrupted run never leaves a folder that looks done.
* :class:`FileLock`: an exclusive advisory lock (``fcntl.flock``) on a lock file, held
  until released or until the process dies (the kernel drops it even on SIGKILL), with a
  timeout (``0``: try once) and a note naming the holder (pid and host) in the lock file,
  quoted by the :class:`LockTimeout` raised when the lock stays held.
* :func:`safe_name`: a file or class name as printable text: control characters (ESC,
  C0, DEL, C1), line and bidirectional-override characters and undecodable bytes are
  written as backslash escapes, so a hostile name cannot drive the terminal, break a
  line, or stop a PNG or an HTML page from being written.

Where ``fcntl`` does not exist (Windows) the lock is a no-op.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import PointeaError

__all__ = [
    "atomic_path",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "staging_folder",
    "publish_folder",
    "atomic_folder",
    "FileLock",
    "LockTimeout",
    "TEMP_SUFFIX",
    "safe_name",
]

#: Suffix of the temporary files :func:`atomic_write` leaves behind only when the process
#: is killed mid-write (``.<name>.<random>.tmp``); safe to delete when no writer runs.
TEMP_SUFFIX = ".tmp"


# --------------------------------------------------------------------------- files
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends, it becomes ``path``.

    For writers that want a file name rather than a file object (``torch.save`` through
    fsspec, h5py, ...). The file written there is fsynced, given the usual permissions
    and renamed over ``path``; if the block raises, the temporary file is removed, ``path``
    is left as it was and the exception propagates (an :class:`OSError` re-raised with
    ``path`` named in its message).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise OSError(exc.errno, f"could not write {path}: {exc.strerror or exc}") from exc
    tmp = Path(name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise OSError(exc.errno, f"could not write {path}: {exc.strerror or exc}") from exc
        raise
    _fsync_folder(path.parent)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(f)`` on a temporary file next to ``path``, then move it into place.

    If ``write`` raises, the temporary file is removed, ``path`` is left as it was and
    the exception propagates. An :class:`OSError` (disk full, folder not writable) is
    re-raised with the destination named in its message (see :func:`atomic_path`).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(
    path: str | os.PathLike, obj: Any, *, indent: int | None = 2, sort_keys: bool = False
) -> Path:
    """Write ``obj`` as JSON (plus a final newline) to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys) + "\n")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (best effort: not every OS allows it)."""
    with contextlib.suppress(OSError):
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


# --------------------------------------------------------------------------- folders
@contextlib.contextmanager
def staging_folder(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a new hidden temporary folder beside ``final``; it is always removed at exit.

    Build the content there, then move it (or a folder inside it) into place with
    :func:`publish_folder` before the ``with`` block ends.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        os.chmod(
            tmp, 0o777 & ~_umask()
        )  # mkdtemp makes 0700; a published folder gets the usual mode
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish_folder(
    src: str | os.PathLike, final: str | os.PathLike, *, replace: bool = False
) -> Path:
    """Rename the finished folder ``src`` to ``final`` (same filesystem: atomic).

    Args:
        src: the complete folder (usually inside a :func:`staging_folder`).
        final: where it goes.
        replace: replace an existing ``final``: the old folder is first renamed aside,
            the new one renamed in, then the old one deleted, so ``final`` is never
            missing a part. Without it an existing ``final`` raises.

    Raises:
        FileExistsError: ``final`` exists and ``replace`` is false.
    """
    src, final = Path(src), Path(final)
    if final.exists() or final.is_symlink():
        if not replace:
            raise FileExistsError(f"{final}: already exists")
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.replace(final, old / final.name)
        os.replace(src, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, final)
    _fsync_folder(final.parent)
    return final


@contextlib.contextmanager
def atomic_folder(final: str | os.PathLike, *, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``final`` when the block ends without error.

    On an exception (or interruption) nothing appears at ``final`` and the temporary
    folder is removed. ``replace`` as in :func:`publish_folder`.

    Raises:
        FileExistsError: ``final`` exists and ``replace`` is false (checked before the
            block runs, and again when publishing).
    """
    final = Path(final)
    if not replace and (final.exists() or final.is_symlink()):
        raise FileExistsError(f"{final}: already exists")
    with staging_folder(final) as tmp:
        yield tmp
        publish_folder(tmp, final, replace=replace)


# --------------------------------------------------------------------------- locks
class LockTimeout(PointeaError, TimeoutError):
    """A :class:`FileLock` stayed held by someone else for longer than its timeout.

    Attributes:
        path: the lock file.
        holder: what the holder wrote into the lock file (e.g. ``"pid 12 on host"``),
            or ``""``.
    """

    def __init__(self, path: Path, holder: str, timeout: float) -> None:
        self.path = path
        self.holder = holder
        self.timeout = timeout
        waited = "is held" if timeout == 0 else f"stayed held for {timeout:g} s"
        by = f" by {holder}" if holder else " by another process"
        super().__init__(f"{path}: the lock {waited}{by}")


class FileLock:
    """An exclusive advisory lock on ``path`` (created when missing).

    Use as a context manager (``with FileLock(p):``) or call :meth:`acquire` /
    :meth:`release`. The lock belongs to this object; it is dropped on :meth:`release`,
    when the object is garbage-collected, or when the process ends. The lock file itself
    stays (it is harmless). Not re-entrant.

    Args:
        path: the lock file.
        timeout: seconds to wait for a held lock; ``None`` waits forever, ``0`` tries
            once. On expiry :class:`LockTimeout` is raised.
        poll: seconds between tries while waiting with a finite timeout.
        record_holder: write ``"pid <pid> on <host>"`` into the lock file once acquired,
            so a refused caller can say who holds it.
        on_wait: called once with a message (naming the holder) when the lock is found
            held and the call is about to wait; e.g. ``print``.

    Raises:
        OSError: the lock file cannot be created or opened (from :meth:`acquire`).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        timeout: float | None = None,
        poll: float = 0.05,
        record_holder: bool = True,
        on_wait: Callable[[str], Any] | None = None,
    ) -> None:
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be >= 0 or None, got {timeout}")
        self.path = Path(path)
        self.timeout = timeout
        self.poll = poll
        self.record_holder = record_holder
        self.on_wait = on_wait
        self._fd: int | None = None

    @property
    def locked(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def holder(self) -> str:
        """The note the current (or last) holder wrote into the lock file, or ``""``."""
        try:
            return self.path.read_text(errors="replace").strip()[:200]
        except OSError:
            return ""

    def acquire(self) -> FileLock:
        """Take the lock, waiting up to ``timeout``; returns ``self``."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path}: this FileLock is already held (not re-entrant)")
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory locks
            self._fd = -1
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _try_flock(fd, fcntl):
                if self.timeout == 0:
                    raise LockTimeout(self.path, self.holder(), 0)
                if self.on_wait is not None:
                    held_by = self.holder()
                    self.on_wait(
                        f"waiting for the lock {self.path}"
                        + (f" (held by {held_by})" if held_by else "")
                    )
                if self.timeout is None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                else:
                    deadline = time.monotonic() + self.timeout
                    while not _try_flock(fd, fcntl):
                        if time.monotonic() >= deadline:
                            raise LockTimeout(self.path, self.holder(), self.timeout)
                        time.sleep(self.poll)
        except BaseException:
            os.close(fd)
            raise
        if self.record_holder:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (no-op when not held)."""
        fd, self._fd = self._fd, None
        if fd is None or fd < 0:
            return
        try:
            import fcntl

            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.release()

    def __repr__(self) -> str:
        return f"FileLock({str(self.path)!r}, timeout={self.timeout}, locked={self.locked})"


def _try_flock(fd: int, fcntl: Any) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:  # some systems report EACCES / EAGAIN differently
        import errno

        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return False
        raise
    return True


# --------------------------------------------------------------------------- names
# Escaped besides the C0 / DEL / C1 controls: line and paragraph separators, and the
# bidirectional marks, embeddings, overrides and isolates that reorder what follows them.
_ESCAPED = {0x2028, 0x2029, 0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if ch in _SHORT:
        return _SHORT[ch]
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as surrogateescape keeps it
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def _needs_escape(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF or code in _ESCAPED


def safe_name(name: str | bytes | os.PathLike) -> str:
    """``name`` as text that is safe to print, to draw in a PNG and to put in a page.

    Control characters (C0 such as ESC and newline, DEL, C1), line separators and
    bidirectional overrides become backslash escapes (``\\x1b``, ``\\n``, ``\\u202e``);
    bytes that are not UTF-8 (a POSIX file name read with ``surrogateescape``, or
    ``bytes``) become ``\\xNN``. Everything else, backslashes included, is kept.

    >>> safe_name(b"caf\\xe9\\x1b[2J.xyz")
    'caf\\\\xe9\\\\x1b[2J.xyz'
    """
    if isinstance(name, bytes):
        text = name.decode("utf-8", "surrogateescape")
    else:
        text = os.fspath(name) if isinstance(name, os.PathLike) else str(name)
        if isinstance(text, bytes):
            text = text.decode("utf-8", "surrogateescape")
    if not any(_needs_escape(ch) for ch in text):
        return text
    return "".join(_escape_char(ch) if _needs_escape(ch) else ch for ch in text)

