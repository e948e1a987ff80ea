"""Output shared by ``pointea-predict``'s object and scene flows: lines that survive any
stream encoding and any name (control characters and undecodable bytes escaped by
:func:`~pointea.files.safe_name`), one-line errors and warnings, unique output names,
failure records and the open3d window."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from ..files import safe_name

PROG = "pointea-predict"


def emit(text: str, stream: TextIO | None = None) -> None:
    """Print ``text`` (one or more lines) whatever the stream's encoding and whatever
    names it holds: control characters (ESC, DEL, C1 ...) and undecodable bytes are
    written as backslash escapes (:func:`~pointea.files.safe_name`), as are characters
    the stream cannot encode, instead of reaching the terminal or stopping the run."""
    stream = stream or sys.stdout
    text = "\n".join(safe_name(line) for line in text.split("\n"))
    enc = getattr(stream, "encoding", None) or "utf-8"
    stream.write(text.encode(enc, "backslashreplace").decode(enc, "replace") + "\n")
    stream.flush()


def report_error(msg: str) -> None:
    """One line on stderr: ``pointea-predict: error: MSG`` (newlines escaped)."""
    emit(f"{PROG}: error: {safe_name(msg)}", sys.stderr)


def report_warning(msg: str) -> None:
    """One line on stderr: ``pointea-predict: warning: MSG`` (newlines escaped)."""
    emit(f"{PROG}: warning: {safe_name(msg)}", sys.stderr)


def unique_stem(spec: Any, used: set[str]) -> str:
    path = Path(str(getattr(spec, "path", spec)))
    index = getattr(spec, "index", None)
    base = path.stem + (f"_{index}" if index is not None else "")
    stem, k = base, 1
    while stem in used:
        k += 1
        stem = f"{base}_{k}"
    used.add(stem)
    return stem


def show_window(points: Any, colors: Any, title: str) -> None:
    from .. import visualization as viz

    try:
        viz.show(points, colors, window_name=title)
    except (RuntimeError, ImportError) as exc:
        report_warning(f"--show: {exc}")


def record_failure(results: list[dict], spec: Any, exc: BaseException) -> None:
    """Report one input's failure on one line (naming it) and record it in ``results``."""
    msg = str(exc) if str(spec) in str(exc) else f"{spec}: {exc}"
    report_error(msg)
    results.append({"input": str(spec), "ok": False, "error": msg})
