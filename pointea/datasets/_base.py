"""The cached-reader base class shared by :class:`ModelNet40` and :class:`ShapeNetPart`.

A reader reads the extracted archive once, applies ``pre_transform`` and stores the result
as a PyG processed file. The cache lives in ``<data root>/processed/<archive folder>/
<split>-<fingerprint>/data.pt``, where the fingerprint hashes

* every source file the split reads (relative path, size, modification time, and for a
  file of at most :data:`HASH_BELOW` bytes its content hash),
* the reader's options (format, normals, validation carving, categories ...),
* ``repr(pre_transform)`` and a cache format version.

So a changed source file or pre-transform selects a different cache folder and the data is
rebuilt, never served stale. One limit: a larger file edited in place to the same size with
its modification time set back is not noticed (size and time are all that is compared for
it, to keep opening a dataset cheap); delete ``processed/`` after such an edit.
(A pre-transform whose ``repr`` carries a memory address, such
as a lambda, rebuilds on every run: correct, only slower; give it a ``__repr__``.) The cache
file is written to a temporary name and renamed, so an interrupted build is never loaded;
a cache that fails to load is rebuilt. Caches of the same split whose sources no longer
match are deleted when a new one is built.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import Data, InMemoryDataset

from ..errors import DataError, DatasetNotFoundError
from ..files import atomic_path, atomic_write_text
from .download import ARCHIVES, ArchiveInfo, download_archive, find_archive, manual_instructions

CACHE_VERSION = 1


def locate_archive(root: str | os.PathLike, key: str, download: bool) -> Path:
    """Find (or, with ``download``, fetch) the extracted archive folder for ``key``."""
    info: ArchiveInfo = ARCHIVES[key]
    root = Path(root).expanduser()
    found = find_archive(info, root)
    if found is not None:
        return found
    if download:
        return download_archive(key, root)
    raise DatasetNotFoundError(
        f"{root}: no {info.folder}/ folder found here (nor is {root} itself that folder).\n"
        f"{manual_instructions(info, root)}"
    )


#: source files of at most this many bytes are identified by their content as well
HASH_BELOW = 64 * 1024


def source_stats(
    files: Sequence[Path], base: Path, hash_below: int = HASH_BELOW
) -> list[list[Any]]:
    """``[relative path, size, mtime_ns, sha256 or None]`` of each file: the identity of a
    cache's sources (the archive readers' caches and the S3DIS room cache).

    The rule: a file of at most ``hash_below`` bytes (64 KiB) is identified by its path,
    size, modification time (ns) and the first 16 hex digits of its content's SHA-256, so
    any edit changes the identity, even one that keeps the size and sets the time back. A
    larger file is identified by path, size and modification time only (reading it would
    cost as much as the cache saves): an edit to the same size with the time set back is
    not noticed; delete the ``processed/`` folder after one. A file that cannot be read
    gets ``None`` for its hash (its reader names it when it opens it)."""
    out = []
    for f in files:
        st = f.stat()
        try:
            rel = str(f.relative_to(base))
        except ValueError:
            rel = str(f)
        digest = None
        if st.st_size <= hash_below:
            try:
                digest = hashlib.sha256(f.read_bytes()).hexdigest()[:16]
            except OSError:
                digest = None  # unreadable: the reader names it when it opens the file
        out.append([rel, st.st_size, st.st_mtime_ns, digest])
    return out


def fingerprint(record: Any) -> str:
    """16 hex digits identifying a JSON-able ``record`` (canonical JSON, SHA-256): the one
    cache key of the archive readers, the S3DIS room cache and the synthetic sets' markers."""
    blob = json.dumps(record, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class CachedArchiveDataset(InMemoryDataset):
    """Base of the archive readers: locating, fingerprinting, caching (see module doc).

    Subclasses set ``self.archive_dir`` and ``self.split`` before calling
    :meth:`_init_cache`, and implement :meth:`source_files` and :meth:`read_samples`.
    """

    archive_dir: Path
    split: str

    def source_files(self) -> list[Path]:  # pragma: no cover - abstract
        """Every file :meth:`read_samples` reads (checked to exist)."""
        raise NotImplementedError

    def read_samples(self) -> list[Data]:  # pragma: no cover - abstract
        """Read and validate the split from the archive, one :class:`Data` per shape."""
        raise NotImplementedError

    def cache_options(self) -> dict[str, Any]:
        """Reader options that change the processed data."""
        return {}

    @property
    def cache_name(self) -> str:
        """The name of this split's caches (``split``; readers of several files in one
        folder add which file, so that building one never prunes another's)."""
        return self.split

    # ------------------------------------------------------------------ cache plumbing
    def _init_cache(
        self,
        transform: Callable[[Data], Data] | None,
        pre_transform: Callable[[Data], Data] | None,
        force_reload: bool,
    ) -> None:
        sources = self.source_files()
        self._meta = {
            "cache_version": CACHE_VERSION,
            "reader": type(self).__name__,
            "split": self.split,
            "options": self.cache_options(),
            "pre_transform": None if pre_transform is None else repr(pre_transform),
            "sources": source_stats(sources, self.archive_dir),
        }
        self._fingerprint = fingerprint(self._meta)
        super().__init__(
            str(self.archive_dir.parent),
            transform,
            pre_transform,
            None,
            log=False,
            force_reload=force_reload,
        )
        path = self.processed_paths[0]
        try:
            self.load(path)
        except Exception:  # a damaged cache file: rebuild it once
            shutil.rmtree(self.processed_dir, ignore_errors=True)
            self._process_now()
            self.load(path)

    @property
    def raw_dir(self) -> str:  # the extracted archive is read in place
        return str(self.archive_dir)

    @property
    def raw_file_names(self) -> list[str]:
        return []

    @property
    def processed_dir(self) -> str:
        return str(
            self.archive_dir.parent
            / "processed"
            / self.archive_dir.name
            / f"{self.cache_name}-{self._fingerprint}"
        )

    @property
    def processed_file_names(self) -> list[str]:
        return ["data.pt"]

    def _process_now(self) -> None:
        Path(self.processed_dir).mkdir(parents=True, exist_ok=True)
        self.process()

    def process(self) -> None:
        data_list = self.read_samples()
        if not data_list:
            raise DataError(
                f"{self.archive_dir}: split {self.split!r} holds no shapes "
                f"(options {self.cache_options()})"
            )
        if self.pre_transform is not None:
            data_list = [self.pre_transform(d) for d in data_list]
        out = Path(self.processed_paths[0])
        with atomic_path(out) as tmp:
            self.save(data_list, str(tmp))
        atomic_write_text(out.parent / "meta.json", json.dumps(self._meta, indent=1, default=str))
        self._prune_stale()

    def _prune_stale(self) -> None:
        """Delete other caches of this split whose source files no longer match."""
        here = Path(self.processed_dir)
        for sibling in here.parent.glob(f"{self.cache_name}-*"):
            if sibling == here or not sibling.is_dir():
                continue
            try:
                meta = json.loads((sibling / "meta.json").read_text())
            except (OSError, ValueError):
                continue
            if (
                meta.get("sources") != self._meta["sources"]
                or meta.get("cache_version") != CACHE_VERSION
            ):
                shutil.rmtree(sibling, ignore_errors=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)}, split={self.split!r})"


def as_tensor(array: Any, dtype: torch.dtype) -> torch.Tensor:
    """``torch.from_numpy`` on a contiguous copy of ``array`` with ``dtype``."""
    import numpy as np

    return torch.from_numpy(np.ascontiguousarray(array)).to(dtype)
