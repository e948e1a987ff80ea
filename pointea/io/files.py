"""Reading a user's file safely: one error type naming the file, bounded reads, text decoding.

Every reader in :mod:`pointea.io` (and the dataset readers) gets its bytes through
:func:`read_bytes`, which refuses what is not a regular file after links are resolved (a
FIFO would block forever, ``/dev/zero`` would never end) and never reads more than the
size the file had when it was opened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import DataError, DatasetNotFoundError

__all__ = [
    "display_name",
    "fail",
    "first_line",
    "require_file",
    "read_bytes",
    "read_text",
    "decode_text",
]


def display_name(path: str | os.PathLike) -> str:
    """``path`` as printable text: bytes that are not UTF-8 are shown as ``\\xNN``.

    A file name with such bytes would otherwise stop a program whose stdout is strict
    UTF-8 with a ``UnicodeEncodeError`` when the message naming it is printed.
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def fail(path: str | os.PathLike, problem: str) -> DataError:
    """A :class:`DataError` whose message starts with the (printable) file name."""
    return DataError(f"{display_name(path)}: {problem}")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name if it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _check_mode(path: Path, mode: int, what: str) -> None:
    if stat.S_ISDIR(mode):
        raise fail(path, f"is a folder, expected {what}")
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise fail(path, f"is {kind}, not a regular file; refusing to read it")


def require_file(path: str | os.PathLike, what: str = "", hint: str = "") -> int:
    """Check that ``path`` (links resolved) is a regular, non-empty file; return its size.

    Args:
        path: the file.
        what: what the file is, for messages (``"class names"``); empty for a user's file.
        hint: appended to the message of a missing file (how to get it).

    Raises:
        DatasetNotFoundError: the file does not exist (a :class:`DataError`).
        DataError: a folder, a FIFO / device / socket, unreadable, or empty.
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        msg = f"{display_name(path)}: " + (f"missing {what}" if what else "no such file")
        raise DatasetNotFoundError(f"{msg}. {hint}".strip() if hint else msg) from None
    except OSError as exc:
        raise fail(path, f"cannot be read: {exc.strerror or exc}") from exc
    _check_mode(path, st.st_mode, f"the {what} file" if what else "a file")
    if st.st_size == 0:
        raise fail(path, f"the {what} file is empty" if what else "the file is empty")
    return st.st_size


def read_bytes(path: str | os.PathLike, what: str = "", hint: str = "") -> bytes:
    """The whole content of a user's regular file, read once and bounded by its size.

    Raises the errors of :func:`require_file`, and :class:`DataError` if the file holds
    only whitespace.
    """
    data = _read_all(Path(path), what, hint)
    if not data.strip():
        raise fail(path, f"the {what} file is empty" if what else "the file is empty")
    return data


def _read_all(path: Path, what: str, hint: str) -> bytes:
    require_file(path, what, hint)
    try:
        # O_NONBLOCK: should the file be swapped for a FIFO after the check, opening it
        # does not wait for a writer (the fstat below then refuses it).
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise fail(path, f"cannot be read: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(fd)
        _check_mode(path, st.st_mode, f"the {what} file" if what else "a file")
        size = st.st_size
        chunks = []
        remaining = size
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 26))
            if not chunk:
                break  # the file shrank while it was read
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise fail(path, f"cannot be read: {exc.strerror or exc}") from exc
    except MemoryError:
        raise fail(path, f"too large to read into memory ({size} bytes)") from None
    finally:
        os.close(fd)
    return data


def read_text(path: str | os.PathLike, what: str, hint: str = "") -> str:
    """A whole UTF-8 text file (a dataset's list or table), with clear errors."""
    data = _read_all(Path(path), what, hint)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail(
            path,
            f"the {what} file is not UTF-8 text (byte {exc.start} is "
            f"{exc.object[exc.start : exc.start + 1]!r}); is it a binary or corrupt file?",
        ) from exc


def decode_text(path: Path, data: bytes) -> str:
    """A user's text file: UTF-8 (a byte-order mark dropped), else latin-1; NUL refused."""
    nul = data.find(b"\x00")
    if nul >= 0:
        raise fail(path, f"is not a text file (NUL byte at offset {nul})")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Old exporters write latin-1 comments; numbers are ASCII either way.
        return data.decode("latin-1")
