"""Output shared by ``pointea-predict``'s object and scene flows: lines that survive any
stream encoding, one-line errors and warnings, unique output names, failure records and
the open3d window."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

PROG = "pointea-predict"


def emit(text: str, stream: TextIO | None = None) -> None:
    """Print a line whatever the stream's encoding: characters it cannot encode (a
    non-UTF-8 file name's surrogates under a strict UTF-8 stdout) are written as
    backslash escapes instead of stopping the run."""
    stream = stream or sys.stdout
    enc = getattr(stream, "encoding", None) or "utf-8"
    stream.write(text.encode(enc, "backslashreplace").decode(enc, "replace") + "\n")
    stream.flush()


def report_error(msg: str) -> None:
    emit(f"{PROG}: error: {msg}", sys.stderr)


def report_warning(msg: str) -> None:
    emit(f"{PROG}: warning: {msg}", sys.stderr)


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
    msg = str(exc) if str(spec) in str(exc) else f"{spec}: {exc}"
    report_error(msg)
    results.append({"input": str(spec), "ok": False, "error": msg})
