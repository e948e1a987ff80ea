"""Inputs named on a command line: ``file.h5:17`` entries and folders expanded."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import DataError
from .files import fail
from .hdf5 import h5_num_entries
from .types import HDF5_EXTENSIONS, SUPPORTED_EXTENSIONS, InputSpec

__all__ = ["parse_input_spec", "expand_inputs"]

_H5_SPEC = re.compile(r"^(?P<path>.+\.(?:h5|hdf5))(?:[:#](?P<index>-?\d+))?$", re.IGNORECASE)


def parse_input_spec(spec: str | os.PathLike) -> InputSpec:
    """Split ``file.h5:17`` / ``file.h5#17`` into path and entry index.

    Anything that is not an HDF5 name with an index suffix is returned as a plain path,
    so Windows drive letters (``C:\\data\\x.ply``) are left alone.
    """
    text = os.fspath(spec)
    m = _H5_SPEC.match(text)
    if m and m.group("index") is not None:
        return InputSpec(Path(m.group("path")), int(m.group("index")))
    return InputSpec(Path(text))


def expand_inputs(specs: Sequence[str | os.PathLike]) -> Iterator[InputSpec | DataError]:
    """Yield one :class:`InputSpec` per shape named by ``specs``.

    ``file.h5`` without an index expands to every entry of the file; a folder expands to
    every supported file below it (recursively, sorted). A spec that cannot be expanded
    (an unreadable HDF5 file, a folder without supported files) yields a
    :class:`DataError` in its place, so the caller can report it and go on.
    """
    for raw in specs:
        spec = parse_input_spec(raw)
        if spec.index is None and spec.path.is_dir():
            found = sorted(
                p
                for p in spec.path.rglob("*")
                if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS
            )
            if not found:
                yield fail(
                    spec.path,
                    f"the folder holds no supported files ({' '.join(SUPPORTED_EXTENSIONS)})",
                )
            yield from expand_inputs(found)
        elif spec.index is None and spec.path.suffix.lower() in HDF5_EXTENSIONS:
            try:
                n = h5_num_entries(spec.path)
            except DataError as exc:
                yield exc
                continue
            for i in range(n):
                yield InputSpec(spec.path, i)
        else:
            yield spec
