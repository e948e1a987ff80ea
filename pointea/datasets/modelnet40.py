"""ModelNet40 read exactly as published, in its two common archives.

* ``format="hdf5"``: ``modelnet40_ply_hdf5_2048/`` (PointNet / DGCNN / PCT benchmark):
  ``ply_data_{train0..4,test0..1}.h5`` with keys ``data`` (n, 2048, 3) float32 and
  ``label`` (n, 1) integer (published as uint8), plus ``normal`` and ``faceId``;
  ``train_files.txt`` / ``test_files.txt`` list the h5 files with a
  ``data/modelnet40_ply_hdf5_2048/`` prefix; ``shape_names.txt`` names the 40 classes.
* ``format="resampled"``: ``modelnet40_normal_resampled/`` (PointNet++):
  ``<class>/<class>_<id>.txt`` with 10,000 rows ``x,y,z,nx,ny,nz``;
  ``modelnet40_shape_names.txt``, ``modelnet40_train.txt`` / ``modelnet40_test.txt``.

The validation split is carved from the published train set, stratified by class and
seeded (``val_fraction``, ``split_seed``), so model selection never sees the test set.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data

from ..errors import DataError, DatasetNotFoundError, InputError
from ..io.files import read_text
from ..io.hdf5 import h5_array, open_h5
from ..io.tables import check_finite, parse_float_table
from ._base import CachedArchiveDataset, as_tensor, locate_archive
from ._validate import (
    check_labels,
    read_lines,
    to_int64_labels,
)

__all__ = [
    "ModelNet40",
    "carve_validation",
    "check_split",
    "read_hdf5_split",
    "read_resampled_split",
    "read_class_names",
    "resolve_listed_file",
]

SPLITS = ("train", "val", "test", "trainval")
FORMATS = {"hdf5": "modelnet40", "resampled": "modelnet40_resampled"}


def check_split(split: str, val_fraction: float) -> None:
    """Refuse a split outside :data:`SPLITS` and a ``val_fraction`` that cannot carve it."""
    if split not in SPLITS:
        raise InputError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if split == "val" and val_fraction == 0:
        raise InputError("split='val' needs val_fraction > 0")


def carve_validation(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices ``0..len(labels)-1`` into (train, val), stratified by class.

    Each class gives ``round(fraction * count)`` of its shapes to validation (at least one
    and never all of them when it has two or more shapes and ``fraction > 0``), drawn
    with ``numpy.random.default_rng(seed)``. Deterministic for the same labels and seed.

    Returns:
        ``(train_idx, val_idx)``, both sorted int64 arrays.
    """
    if not 0.0 <= fraction < 1.0:
        raise InputError(f"val_fraction must be in [0, 1), got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = int(round(fraction * idx.size))
        if fraction > 0 and idx.size >= 2:
            k = max(k, 1)
        k = min(k, idx.size - 1)  # a class never leaves the train split entirely
        val.append(rng.permutation(idx)[:k])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    train_idx = np.setdiff1d(np.arange(labels.size), val_idx)
    return train_idx.astype(np.int64), val_idx.astype(np.int64)


def resolve_listed_file(archive_dir: Path, entry: str, list_path: Path, lineno: int) -> Path:
    """Find the file a list line names, accepting the published folder prefixes.

    ``data/modelnet40_ply_hdf5_2048/ply_data_train0.h5`` resolves to
    ``<archive_dir>/ply_data_train0.h5``; a path relative to the archive folder or to its
    parent also works.
    """
    rel = PurePosixPath(entry.strip().replace("\\", "/"))
    candidates = [archive_dir / rel.name, archive_dir / rel, archive_dir.parent / rel]
    for cand in candidates:
        if cand.is_file():
            return cand
    raise DatasetNotFoundError(
        f"{list_path}: line {lineno} names {entry!r}, but no such file exists "
        f"(looked for {candidates[0]})"
    )


def read_class_names(path: Path) -> list[str]:
    """Class names, one per line, checked for duplicates."""
    names = read_lines(path, "class names")
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            raise DataError(f"{path}: class name {n!r} appears twice (line {i + 1})")
        seen.add(n)
    return names


def _hdf5_files(archive_dir: Path, split: str) -> tuple[Path, list[Path]]:
    list_path = archive_dir / f"{split}_files.txt"
    lines = read_lines(
        list_path,
        f"{split} file list",
        hint="It lists the ply_data_*.h5 files of the split, one a line.",
    )
    return list_path, [
        resolve_listed_file(archive_dir, ln, list_path, i + 1) for i, ln in enumerate(lines)
    ]


def h5_labels(f: Any, path: Path, key: str, n: int) -> np.ndarray:
    """Per-shape integer labels stored as (n, 1) or (n,), returned as int64 (n,)."""
    if key not in f:
        raise DataError(f"{path}: missing HDF5 key {key!r} (the file holds {sorted(f.keys())})")
    ndim = len(getattr(f[key], "shape", ()) or ())
    arr = (
        h5_array(f, path, key, ndim=2, tail=(1,), kinds="iuf")
        if ndim == 2
        else h5_array(f, path, key, ndim=1, kinds="iuf")
    )
    arr = to_int64_labels(arr.reshape(-1), path, f"HDF5 key {key!r}")
    if arr.shape[0] != n:
        raise DataError(f"{path}: HDF5 key {key!r} holds {arr.shape[0]} labels for {n} shapes")
    return arr


def read_hdf5_split(
    archive_dir: str | os.PathLike, split: str, use_normals: bool = False
) -> dict[str, Any]:
    """Read and validate one published split (``"train"`` or ``"test"``) of the HDF5 archive.

    Returns:
        ``{"pos": list of (P, 3) float32, "normals": list or None, "labels": (n,) int64,
        "class_names": list[str], "files": list[Path]}``.
    """
    archive_dir = Path(archive_dir)
    class_names = read_class_names(archive_dir / "shape_names.txt")
    _, files = _hdf5_files(archive_dir, split)
    pos_all: list[np.ndarray] = []
    nrm_all: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for path in files:
        with open_h5(path) as f:
            data = h5_array(f, path, "data", ndim=3, tail=(None, 3), kinds="f")
            if data.shape[0] == 0 or data.shape[1] == 0:
                raise DataError(f"{path}: HDF5 key 'data' holds no points (shape {data.shape})")
            check_finite(data, path, "HDF5 key 'data'", index_name="(shape, point, axis)")
            label = h5_labels(f, path, "label", data.shape[0])
            check_labels(
                label,
                len(class_names),
                path,
                f"HDF5 key 'label' (shape_names.txt has {len(class_names)} classes)",
            )
            if use_normals:
                normal = h5_array(f, path, "normal", ndim=3, tail=(data.shape[1], 3), kinds="f")
                if normal.shape[0] != data.shape[0]:
                    raise DataError(
                        f"{path}: HDF5 key 'normal' holds {normal.shape[0]} shapes, "
                        f"'data' holds {data.shape[0]}"
                    )
                check_finite(normal, path, "HDF5 key 'normal'", index_name="(shape, point, axis)")
                nrm_all.extend(normal.astype(np.float32))
        pos_all.extend(data.astype(np.float32))
        labels.append(label)
    return {
        "pos": pos_all,
        "normals": nrm_all if use_normals else None,
        "labels": np.concatenate(labels),
        "class_names": class_names,
        "files": files,
    }


def _resampled_entries(
    archive_dir: Path, split: str, class_names: list[str]
) -> list[tuple[Path, int]]:
    list_path = archive_dir / f"modelnet40_{split}.txt"
    ids = read_lines(list_path, f"{split} shape list")
    index = {n: i for i, n in enumerate(class_names)}
    out = []
    for i, sid in enumerate(ids):
        cls = sid.rsplit("_", 1)[0]
        if "_" not in sid or cls not in index:
            raise DataError(
                f"{list_path}: line {i + 1}: shape id {sid!r} does not start with a class "
                f"name from modelnet40_shape_names.txt followed by _<id>"
            )
        path = archive_dir / cls / f"{sid}.txt"
        if not path.is_file():
            raise DatasetNotFoundError(
                f"{list_path}: line {i + 1} names {sid!r}, but {path} does not exist"
            )
        out.append((path, index[cls]))
    return out


def read_resampled_split(
    archive_dir: str | os.PathLike, split: str, use_normals: bool = False
) -> dict[str, Any]:
    """Read and validate one split of ``modelnet40_normal_resampled`` (same dict as HDF5)."""
    archive_dir = Path(archive_dir)
    class_names = read_class_names(archive_dir / "modelnet40_shape_names.txt")
    entries = _resampled_entries(archive_dir, split, class_names)
    pos, nrm, labels = [], [], []
    for path, label in entries:
        table = parse_float_table(read_text(path, "point"), path, 6, ",", "point")
        pos.append(table[:, :3])
        if use_normals:
            nrm.append(table[:, 3:6])
        labels.append(label)
    return {
        "pos": pos,
        "normals": nrm if use_normals else None,
        "labels": np.asarray(labels, dtype=np.int64),
        "class_names": class_names,
        "files": [p for p, _ in entries],
    }


class ModelNet40(CachedArchiveDataset):
    r"""ModelNet40 shape classification (Wu et al., CVPR 2015), as a PyG dataset.

    Args:
        root: folder holding the extracted archive folder (e.g. ``data/`` containing
            ``modelnet40_ply_hdf5_2048/``), or that folder itself.
        split: ``"train"``, ``"val"`` (carved from the published train set), ``"test"`` or
            ``"trainval"`` (the whole published train set).
        format: ``"hdf5"`` (``modelnet40_ply_hdf5_2048``, default) or ``"resampled"``
            (``modelnet40_normal_resampled``).
        use_normals: also return per-point normals as ``x``.
        val_fraction: share of each class of the published train set kept for ``"val"``.
        split_seed: seed of the validation carving.
        download: fetch the archive if it is missing (needs internet).
        transform: applied to each sample on access (augmentation).
        pre_transform: applied once before caching (e.g. ``SubsamplePoints(1024)`` for the
            10k-point resampled archive).
        force_reload: rebuild the processed cache.

    Samples:
        ``Data(pos=(P, 3) float32, y=(1,) int64, x=(P, 3) float32 normals if use_normals)``;
        all points of the file are kept (2048 for HDF5, 10,000 for resampled).

    Attributes:
        class_names: names from the archive's shape-names file.
        num_classes: ``len(class_names)``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        *,
        format: str = "hdf5",
        use_normals: bool = False,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        download: bool = False,
        transform: Callable[[Data], Data] | None = None,
        pre_transform: Callable[[Data], Data] | None = None,
        force_reload: bool = False,
    ) -> None:
        check_split(split, val_fraction)
        if format not in FORMATS:
            raise InputError(f"format must be one of {tuple(FORMATS)}, got {format!r}")
        self.split = split
        self.format = format
        self.use_normals = bool(use_normals)
        self.val_fraction = float(val_fraction)
        self.split_seed = int(split_seed)
        self.archive_dir = locate_archive(root, FORMATS[format], download)
        names_file = "shape_names.txt" if format == "hdf5" else "modelnet40_shape_names.txt"
        self.class_names: list[str] = read_class_names(self.archive_dir / names_file)
        self._init_cache(transform, pre_transform, force_reload)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def _published_split(self) -> str:
        return "test" if self.split == "test" else "train"

    def cache_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"format": self.format, "use_normals": self.use_normals}
        if self.split in ("train", "val"):
            opts.update(val_fraction=self.val_fraction, split_seed=self.split_seed)
        return opts

    def source_files(self) -> list[Path]:
        split = self._published_split
        if self.format == "hdf5":
            list_path, files = _hdf5_files(self.archive_dir, split)
            return [self.archive_dir / "shape_names.txt", list_path, *files]
        entries = _resampled_entries(self.archive_dir, split, self.class_names)
        return [
            self.archive_dir / "modelnet40_shape_names.txt",
            self.archive_dir / f"modelnet40_{split}.txt",
            *[p for p, _ in entries],
        ]

    def read_samples(self) -> list[Data]:
        reader = read_hdf5_split if self.format == "hdf5" else read_resampled_split
        out = reader(self.archive_dir, self._published_split, self.use_normals)
        labels = out["labels"]
        index = np.arange(labels.size)
        if self.split in ("train", "val"):
            train_idx, val_idx = carve_validation(labels, self.val_fraction, self.split_seed)
            index = train_idx if self.split == "train" else val_idx
        samples = []
        for i in index:
            d = Data(
                pos=as_tensor(out["pos"][i], torch.float32),
                y=torch.tensor([int(labels[i])], dtype=torch.long),
            )
            if self.use_normals:
                d.x = as_tensor(out["normals"][i], torch.float32)
            samples.append(d)
        return samples

    def __repr__(self) -> str:
        return (
            f"ModelNet40({len(self)}, split={self.split!r}, format={self.format!r}, "
            f"classes={self.num_classes})"
        )
