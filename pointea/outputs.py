"""The guard that keeps outputs off the user's files.

:func:`check_output`: before a command writes a file the user named (or one in a folder
the user named), refuse when it is one of the command's inputs (never replaced) or an
existing file pointea did not write (replaced only with ``overwrite``, ``--overwrite``
on the command line). Files pointea writes carry a marker (:func:`is_pointea_output`:
a PNG ``Software`` text chunk, an HTML generator tag, a first comment line in PLY and
text files, a ``written_by`` key first in JSON), so a command run again over its own
earlier outputs needs no flag.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

from .errors import OutputExistsError
from .files import safe_name

__all__ = [
    "HTML_GENERATOR",
    "JSON_MARKER",
    "OVERWRITE_FLAG",
    "PNG_SOFTWARE",
    "TEXT_MARKER",
    "check_output",
    "is_pointea_output",
]

#: The command-line flag that lets a command replace an existing file it did not write.
OVERWRITE_FLAG = "--overwrite"
#: The PNG ``tEXt`` ``Software`` value of the images pointea writes.
PNG_SOFTWARE = "pointea"
#: The ``<meta name="generator">`` of the HTML pages pointea writes.
HTML_GENERATOR = '<meta name="generator" content="pointea">'
#: The first line of the text tables pointea writes (``#`` lines are comments to readers).
TEXT_MARKER = "# written by pointea"
#: The first key and value of the JSON reports pointea writes (JSON has no comments).
JSON_MARKER = {"written_by": "pointea"}
_JSON_MARKER = re.compile(rb'^\s*\{\s*"written_by"\s*:\s*"pointea"')
_PLY_MARKER = b"\ncomment written by pointea\n"
_HEAD_BYTES = 4096


def _png_software(head: bytes) -> str | None:
    """The ``Software`` value of a PNG's ``tEXt`` chunks before its image data."""
    if not head.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    pos = 8
    while pos + 8 <= len(head):
        size = int.from_bytes(head[pos : pos + 4], "big")
        kind = head[pos + 4 : pos + 8]
        if kind in (b"IDAT", b"IEND"):
            return None
        body = head[pos + 8 : pos + 8 + size]
        if kind == b"tEXt" and b"\0" in body:
            key, value = body.split(b"\0", 1)
            if key == b"Software":
                return value.decode("latin-1")
        pos += 12 + size
    return None


def is_pointea_output(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file pointea wrote, by the marker of its format: a PNG's
    ``tEXt`` ``Software`` chunk, an HTML page's generator ``<meta>``, a PLY header
    comment, a text table's first line, a JSON report's first key. ``.npy`` and other
    formats carry none."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD_BYTES if suffix != ".png" else 1 << 16)
    except OSError:
        return False
    if suffix == ".png":
        return _png_software(head) == PNG_SOFTWARE
    if suffix in (".html", ".htm"):
        return HTML_GENERATOR.encode() in head
    if suffix == ".ply":
        end = head.find(b"end_header")
        return end > 0 and _PLY_MARKER in head[:end]
    if suffix in (".txt", ".xyz"):
        return head.startswith(TEXT_MARKER.encode())
    if suffix == ".json":
        return _JSON_MARKER.match(head) is not None
    return False


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def check_output(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike] = (),
    overwrite: bool = False,
    flag: str = OVERWRITE_FLAG,
) -> Path:
    """Refuse to write ``path`` when that would replace a file the user owns.

    Args:
        path: the file about to be written.
        inputs: the files the command reads (its inputs, checkpoint, truth ...); a
            folder stands for the files directly in it. None of them is ever replaced,
            even with ``overwrite``; a link or a second name of an input counts as it.
        overwrite: replace an existing file pointea did not write.
        flag: how the caller's user says ``overwrite`` (named in the message).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputExistsError: ``path`` is an input, a folder, or an existing file without
            pointea's marker (:func:`is_pointea_output`) while ``overwrite`` is false.
    """
    path = Path(path)
    shown = safe_name(path)
    if not (path.exists() or path.is_symlink()):
        return path
    if path.is_dir():
        raise OutputExistsError(path, f"{shown}: is a folder; name a file to write")
    target = _identity(path)
    if target is not None:
        for item in inputs:
            item = Path(item)
            names = [item]
            if item.is_dir():
                with contextlib.suppress(OSError):
                    names = [p for p in item.iterdir() if p.is_file()]
            if any(_identity(p) == target for p in names):
                raise OutputExistsError(
                    path,
                    f"{shown}: is an input of this command and is never written over, "
                    f"even with {flag}; name another output",
                )
    if overwrite or is_pointea_output(path):
        return path
    raise OutputExistsError(
        path,
        f"{shown}: exists and was not written by pointea; pass {flag} to replace it, "
        "or name another output",
    )
