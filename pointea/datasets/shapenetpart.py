"""ShapeNetPart part segmentation (Yi et al., SIGGRAPH Asia 2016), read as published.

The category / part table (:data:`SHAPENET_CATEGORIES`, :data:`CATEGORY_PARTS`,
:data:`PART_NAMES`, :func:`category_index`) is defined once, in :mod:`pointea.labels`,
and importable from here too.

Archives:

* ``format="text"``: ``shapenetcore_partanno_segmentation_benchmark_v0_normal/`` with
  ``synsetoffset2category.txt`` (``Airplane<TAB>02691156``),
  ``train_test_split/shuffled_{train,val,test}_file_list.json`` (lists of
  ``"shape_data/<synset>/<token>"``) and ``<synset>/<token>.txt`` rows
  ``x y z nx ny nz part`` with a global part id 0..49.
* ``format="hdf5"``: ``shapenet_part_seg_hdf5_data/`` (published zip folder ``hdf5_data/``)
  with ``ply_data_{train0..5,val0,test0..1}.h5``: ``data`` (n, 2048, 3), ``label`` (n, 1)
  category 0..15, ``pid`` (n, 2048) global part id 0..49; lists
  ``{split}_hdf5_file_list.txt`` (when absent, ``ply_data_{split}*.h5`` is used).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data

from ..errors import DataError, DatasetNotFoundError, InputError
from ..io.files import read_text
from ..io.hdf5 import h5_array, open_h5
from ..io.tables import check_finite, parse_float_table
from ..labels import (
    CATEGORY_PARTS,
    NUM_PARTS,
    PART_NAMES,
    PART_TO_CATEGORY,
    SHAPENET_CATEGORIES,
    category_index,
    part_label,
)
from ._base import CachedArchiveDataset, as_tensor, locate_archive
from ._validate import (
    check_labels,
    read_json_list,
    read_lines,
    to_int64_labels,
)

__all__ = [
    "SHAPENET_CATEGORIES",
    "CATEGORY_PARTS",
    "PART_NAMES",
    "NUM_PARTS",
    "PART_TO_CATEGORY",
    "ShapeNetPart",
    "part_label",
    "category_index",
    "read_text_split",
    "read_hdf5_split",
    "read_synset_map",
]

_CATEGORY_NAMES = list(SHAPENET_CATEGORIES)
# (16, 50) bool: which global part ids belong to which category.
_PART_MASK = np.zeros((16, NUM_PARTS), dtype=bool)
for _c, _parts in enumerate(CATEGORY_PARTS):
    _PART_MASK[_c, _parts] = True

SPLITS = ("train", "val", "test", "trainval")
FORMATS = {"text": "shapenetpart", "hdf5": "shapenetpart_hdf5"}


def _selected(categories: str | Sequence[str] | None) -> list[int]:
    if categories is None:
        return list(range(16))
    if isinstance(categories, str):
        categories = [categories]
    idx = sorted({category_index(c) for c in categories})
    if not idx:
        raise InputError("categories must name at least one category (or be None for all)")
    return idx


def check_parts(parts: np.ndarray, category: int, path: Path, field: str) -> None:
    """Raise unless every part id lies in 0..49 and belongs to ``category``."""
    check_labels(parts, NUM_PARTS, path, field)
    ok = _PART_MASK[category, parts]
    if not ok.all():
        bad = int(parts[~ok][0])
        raise DataError(
            f"{path}: {field}: part id {bad} belongs to {part_label(bad)}, not to category "
            f"{_CATEGORY_NAMES[category]} (whose parts are {CATEGORY_PARTS[category]}); "
            f"{int((~ok).sum())} point(s) affected"
        )


def read_synset_map(path: Path) -> dict[str, int]:
    """Parse ``synsetoffset2category.txt`` into synset id -> canonical category index."""
    out = {}
    for i, line in enumerate(read_lines(path, "category table")):
        fields = line.split()
        if len(fields) != 2:
            raise DataError(f"{path}: line {i + 1} must be '<Name><TAB><synset>', got {line!r}")
        name, synset = fields
        if name not in SHAPENET_CATEGORIES:
            raise DataError(f"{path}: line {i + 1}: unknown category {name!r}")
        if SHAPENET_CATEGORIES[name] != synset:
            raise DataError(
                f"{path}: line {i + 1}: category {name} has synset "
                f"{SHAPENET_CATEGORIES[name]}, the file says {synset}"
            )
        out[synset] = _CATEGORY_NAMES.index(name)
    return out


def _published_splits(split: str) -> tuple[str, ...]:
    return ("train", "val") if split == "trainval" else (split,)


def _text_entries(archive_dir: Path, split: str, selected: Sequence[int]) -> list[tuple[Path, int]]:
    synsets = read_synset_map(archive_dir / "synsetoffset2category.txt")
    out = []
    for s in _published_splits(split):
        list_path = archive_dir / "train_test_split" / f"shuffled_{s}_file_list.json"
        for i, entry in enumerate(read_json_list(list_path, f"{s} split list")):
            parts = [p for p in entry.replace("\\", "/").split("/") if p]
            if len(parts) < 2:
                raise DataError(
                    f"{list_path}: entry {i} {entry!r} is not 'shape_data/<synset>/<token>'"
                )
            synset, token = parts[-2], parts[-1]
            if synset not in synsets:
                raise DataError(
                    f"{list_path}: entry {i} {entry!r}: synset {synset} is not listed in "
                    f"{archive_dir / 'synsetoffset2category.txt'}"
                )
            cat = synsets[synset]
            if cat not in selected:
                continue
            path = archive_dir / synset / f"{token}.txt"
            if not path.is_file():
                raise DatasetNotFoundError(
                    f"{list_path}: entry {i} {entry!r} names {path}, which does not exist"
                )
            out.append((path, cat))
    return out


def read_text_split(
    archive_dir: str | os.PathLike,
    split: str,
    categories: str | Sequence[str] | None = None,
    use_normals: bool = False,
) -> list[dict[str, Any]]:
    """Read and validate one split of the text archive.

    Returns:
        one dict per shape: ``pos`` (P, 3) float32, ``normals`` (P, 3) or None,
        ``parts`` (P,) int64 global ids, ``category`` int, ``file`` Path.
    """
    archive_dir = Path(archive_dir)
    out = []
    for path, cat in _text_entries(archive_dir, split, _selected(categories)):
        table = parse_float_table(read_text(path, "point"), path, 7, None, "point")
        parts = to_int64_labels(table[:, 6], path, "part column (7th)")
        check_parts(parts, cat, path, "part column (7th)")
        out.append(
            {
                "pos": table[:, :3],
                "normals": table[:, 3:6] if use_normals else None,
                "parts": parts,
                "category": cat,
                "file": path,
            }
        )
    return out


def _hdf5_files(archive_dir: Path, split: str) -> tuple[list[Path], list[Path]]:
    files: list[Path] = []
    lists = []
    for s in _published_splits(split):
        list_path = archive_dir / f"{s}_hdf5_file_list.txt"
        if list_path.exists():
            lists.append(list_path)
            for i, line in enumerate(read_lines(list_path, f"{s} file list")):
                cand = archive_dir / Path(line.replace("\\", "/")).name
                if not cand.is_file():
                    raise DatasetNotFoundError(
                        f"{list_path}: line {i + 1} names {line!r}, but {cand} does not exist"
                    )
                files.append(cand)
        else:
            found = sorted(
                archive_dir.glob(f"ply_data_{s}*.h5"),
                key=lambda p: int(m.group(1)) if (m := re.search(r"(\d+)\.h5$", p.name)) else 0,
            )
            if not found:
                raise DatasetNotFoundError(
                    f"{archive_dir}: no {list_path.name} and no ply_data_{s}*.h5 files"
                )
            files.extend(found)
    return lists, files


def read_hdf5_split(
    archive_dir: str | os.PathLike,
    split: str,
    categories: str | Sequence[str] | None = None,
    use_normals: bool = False,
) -> list[dict[str, Any]]:
    """Read and validate one split of the HDF5 archive (same per-shape dicts as text)."""
    archive_dir = Path(archive_dir)
    selected = set(_selected(categories))
    _, files = _hdf5_files(archive_dir, split)
    from .modelnet40 import h5_labels

    out = []
    for path in files:
        with open_h5(path) as f:
            data = h5_array(f, path, "data", ndim=3, tail=(None, 3), kinds="f")
            n, p = data.shape[:2]
            if n == 0 or p == 0:
                raise DataError(f"{path}: HDF5 key 'data' holds no points (shape {data.shape})")
            check_finite(data, path, "HDF5 key 'data'", index_name="(shape, point, axis)")
            label = h5_labels(f, path, "label", n)
            check_labels(label, 16, path, "HDF5 key 'label' (category)")
            pid = h5_array(f, path, "pid", ndim=2, tail=(p,), kinds="iuf")
            if pid.shape[0] != n:
                raise DataError(
                    f"{path}: HDF5 key 'pid' holds {pid.shape[0]} shapes, 'data' holds {n}"
                )
            pid = to_int64_labels(pid, path, "HDF5 key 'pid'")
            normal = None
            if use_normals:
                normal = h5_array(f, path, "normal", ndim=3, tail=(p, 3), kinds="f")
                check_finite(normal, path, "HDF5 key 'normal'", index_name="(shape, point, axis)")
        check_labels(pid, NUM_PARTS, path, "HDF5 key 'pid' (part id)")
        for i in range(n):
            cat = int(label[i])
            check_parts(pid[i], cat, path, f"HDF5 key 'pid', shape {i}")
            if cat not in selected:
                continue
            out.append(
                {
                    "pos": data[i].astype(np.float32),
                    "normals": None if normal is None else normal[i].astype(np.float32),
                    "parts": pid[i],
                    "category": cat,
                    "file": path,
                }
            )
    return out


class ShapeNetPart(CachedArchiveDataset):
    r"""ShapeNetPart part segmentation (16 categories, 50 parts) as a PyG dataset.

    Args:
        root: folder holding the extracted archive folder (e.g. ``data/`` containing
            ``shapenetcore_partanno_segmentation_benchmark_v0_normal/``), or that folder.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"trainval"`` (published lists).
        format: ``"text"`` (default) or ``"hdf5"``.
        categories: a name or list of names (case-insensitive) to keep; ``None`` = all.
        use_normals: also return per-point normals as ``x`` (text format; HDF5 only if the
            files carry a ``normal`` key).
        download: fetch the archive if missing (needs internet).
        transform / pre_transform / force_reload: as in PyG.

    Samples:
        ``Data(pos=(P, 3) float32, y=(P,) int64 global part id, category=(1,) int64,
        x=(P, 3) float32 normals if use_normals)``.

    Attributes:
        categories: the 16 category names in canonical order.
        selected_categories: the names kept by ``categories``.
        num_classes: 50 (global part labels).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "trainval",
        *,
        format: str = "text",
        categories: str | Sequence[str] | None = None,
        use_normals: bool = False,
        download: bool = False,
        transform: Callable[[Data], Data] | None = None,
        pre_transform: Callable[[Data], Data] | None = None,
        force_reload: bool = False,
    ) -> None:
        if split not in SPLITS:
            raise InputError(f"split must be one of {SPLITS}, got {split!r}")
        if format not in FORMATS:
            raise InputError(f"format must be one of {tuple(FORMATS)}, got {format!r}")
        self.split = split
        self.format = format
        self.use_normals = bool(use_normals)
        self._selected = _selected(categories)
        self.categories: list[str] = list(_CATEGORY_NAMES)
        self.selected_categories: list[str] = [_CATEGORY_NAMES[i] for i in self._selected]
        self.archive_dir = locate_archive(root, FORMATS[format], download)
        self._init_cache(transform, pre_transform, force_reload)

    @property
    def num_classes(self) -> int:
        return NUM_PARTS

    @property
    def category_parts(self) -> list[list[int]]:
        return CATEGORY_PARTS

    def cache_options(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "use_normals": self.use_normals,
            "categories": self.selected_categories,
        }

    def source_files(self) -> list[Path]:
        if self.format == "text":
            entries = _text_entries(self.archive_dir, self.split, self._selected)
            lists = [
                self.archive_dir / "train_test_split" / f"shuffled_{s}_file_list.json"
                for s in _published_splits(self.split)
            ]
            return [
                self.archive_dir / "synsetoffset2category.txt",
                *lists,
                *[p for p, _ in entries],
            ]
        lists, files = _hdf5_files(self.archive_dir, self.split)
        return lists + files

    def read_samples(self) -> list[Data]:
        reader = read_text_split if self.format == "text" else read_hdf5_split
        shapes = reader(self.archive_dir, self.split, self.selected_categories, self.use_normals)
        out = []
        for s in shapes:
            d = Data(
                pos=as_tensor(s["pos"], torch.float32),
                y=as_tensor(s["parts"], torch.long),
                category=torch.tensor([s["category"]], dtype=torch.long),
            )
            if self.use_normals:
                d.x = as_tensor(s["normals"], torch.float32)
            out.append(d)
        return out

    def __repr__(self) -> str:
        cats = "all" if len(self._selected) == 16 else self.selected_categories
        return (
            f"ShapeNetPart({len(self)}, split={self.split!r}, format={self.format!r}, "
            f"categories={cats})"
        )
