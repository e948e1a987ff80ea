"""ScanObjectNN (Uy et al., ICCV 2019) read exactly as published: real scanned objects.

The release (``h5_files.zip`` from https://hkust-vgd.github.io/scanobjectnn/, given after
accepting its terms of use) unpacks to::

    h5_files/
      main_split/           objects with their background
        training_objectdataset.h5                       OBJ_BG
        test_objectdataset.h5
        training_objectdataset_augmentedrot_scale75.h5  PB_T50_RS (the hardest variant)
        test_objectdataset_augmentedrot_scale75.h5
      main_split_nobg/      objects alone
        training_objectdataset.h5                       OBJ_ONLY
        test_objectdataset.h5

Each file holds ``data`` (n, 2048, 3) float32 coordinates, ``label`` (n,) integer class
ids 0..14 (:data:`CLASSES`, in label order) and ``mask`` (n, 2048) marking the points
(-1 on the background; not read here). PB_T50_RS perturbs each object five times
(translation, rotation, scaling, bounding boxes shifted by up to 50 %), hence its five
times larger files.

The validation split is carved from the training file, stratified by class and seeded
(``val_fraction``, ``split_seed``), as for ModelNet40: model selection never sees the
test file. The papers that report ScanObjectNN select on the test file; pointea's
``full-train`` protocol trains on the whole training file and keeps the last epoch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data

from ..errors import DataError, DatasetNotFoundError, InputError
from ..io.hdf5 import h5_array, open_h5
from ..io.tables import check_finite
from ._base import CachedArchiveDataset, as_tensor
from ._validate import check_labels
from .modelnet40 import carve_validation, check_split, h5_labels

__all__ = ["CLASSES", "HOME", "VARIANTS", "ScanObjectNN", "find_h5_root", "read_h5_split"]

#: the 15 classes, in label order
CLASSES = (
    "bag",
    "bin",
    "box",
    "cabinet",
    "chair",
    "desk",
    "display",
    "door",
    "shelf",
    "table",
    "bed",
    "pillow",
    "sink",
    "sofa",
    "toilet",
)

#: variant -> (folder, file-name suffix) of its h5 files
VARIANTS = {
    "obj_bg": ("main_split", ""),
    "obj_only": ("main_split_nobg", ""),
    "pb_t50_rs": ("main_split", "_augmentedrot_scale75"),
}

#: where the dataset is given out
HOME = "https://hkust-vgd.github.io/scanobjectnn/"


def _variant(variant: str) -> str:
    key = str(variant).lower().replace("-", "_")
    if key not in VARIANTS:
        raise InputError(
            f"variant must be one of {', '.join(VARIANTS)} (OBJ_BG, OBJ_ONLY, PB_T50_RS), "
            f"got {variant!r}"
        )
    return key


def find_h5_root(root: str | os.PathLike) -> Path:
    """The folder holding ``main_split/`` or ``main_split_nobg/``: ``root`` itself,
    ``root/h5_files`` or ``root/ScanObjectNN[/h5_files]``."""
    root = Path(root).expanduser()
    for cand in (root, root / "h5_files", root / "ScanObjectNN", root / "ScanObjectNN/h5_files"):
        if any((cand / folder).is_dir() for folder, _ in VARIANTS.values()):
            return cand
    raise DatasetNotFoundError(
        f"{root}: no ScanObjectNN h5 files here (looked for main_split/ or main_split_nobg/ "
        f"in {root}, {root / 'h5_files'} and {root / 'ScanObjectNN'}). ScanObjectNN is given "
        f"out after accepting its terms of use at {HOME}: download h5_files.zip there, "
        f"unzip it into {root}, and pass that folder as the data root"
    )


def variant_file(h5_root: Path, variant: str, published_split: str) -> Path:
    """The h5 file of ``variant``'s ``"training"`` or ``"test"`` split."""
    folder, suffix = VARIANTS[_variant(variant)]
    return h5_root / folder / f"{published_split}_objectdataset{suffix}.h5"


def read_h5_split(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate one ScanObjectNN h5 file.

    Returns:
        ``{"pos": (n, P, 3) float32, "labels": (n,) int64}``.

    Raises:
        DataError: naming the file and the key: missing or mis-shaped ``data`` /
            ``label``, NaN or infinite coordinates, labels outside 0..14, a truncated file.
    """
    path = Path(path)
    with open_h5(path, "ScanObjectNN data") as f:
        data = h5_array(f, path, "data", ndim=3, tail=(None, 3), kinds="f")
        if data.shape[0] == 0 or data.shape[1] == 0:
            raise DataError(f"{path}: HDF5 key 'data' holds no points (shape {data.shape})")
        check_finite(data, path, "HDF5 key 'data'", index_name="(object, point, axis)")
        labels = h5_labels(f, path, "label", data.shape[0])
    check_labels(labels, len(CLASSES), path, f"HDF5 key 'label' ({len(CLASSES)} classes)")
    return {"pos": data.astype(np.float32, copy=False), "labels": labels}


class ScanObjectNN(CachedArchiveDataset):
    r"""ScanObjectNN object classification (15 classes of real scans), as a PyG dataset.

    Args:
        root: folder holding ``h5_files/`` (or ``main_split/`` directly).
        split: ``"train"``, ``"val"`` (carved from the training file), ``"test"`` or
            ``"trainval"`` (the whole training file).
        variant: ``"pb_t50_rs"`` (default, the hardest and the one most papers report),
            ``"obj_bg"`` or ``"obj_only"``; case and ``-`` / ``_`` do not matter.
        val_fraction: share of each class of the training file kept for ``"val"``.
        split_seed: seed of the validation carving.
        download: refused: the dataset is given out by hand (see :data:`HOME`).
        transform / pre_transform / force_reload: as for
            :class:`~pointea.datasets.ModelNet40`.

    Samples:
        ``Data(pos=(2048, 3) float32, y=(1,) int64)``, every point of the file.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        *,
        variant: str = "pb_t50_rs",
        val_fraction: float = 0.1,
        split_seed: int = 0,
        download: bool = False,
        transform: Callable[[Data], Data] | None = None,
        pre_transform: Callable[[Data], Data] | None = None,
        force_reload: bool = False,
    ) -> None:
        check_split(split, val_fraction)
        if download:
            raise InputError(
                f"download: ScanObjectNN is given out after accepting its terms of use at "
                f"{HOME}; download h5_files.zip there and unzip it under {root}"
            )
        self.split = split
        self.variant = _variant(variant)
        self.val_fraction = float(val_fraction)
        self.split_seed = int(split_seed)
        h5_root = find_h5_root(root)
        self.archive_dir = h5_root / VARIANTS[self.variant][0]
        self.file = variant_file(h5_root, self.variant, self._published_split)
        if not self.file.is_file():
            raise DatasetNotFoundError(
                f"{self.file}: missing; variant {self.variant} reads "
                f"{self.file.name} in {self.archive_dir} (download h5_files.zip at {HOME})"
            )
        self.class_names: list[str] = list(CLASSES)
        self._init_cache(transform, pre_transform, force_reload)

    @property
    def num_classes(self) -> int:
        return len(CLASSES)

    @property
    def _published_split(self) -> str:
        return "test" if self.split == "test" else "training"

    @property
    def cache_name(self) -> str:
        return f"{self.variant}-{self.split}"

    def cache_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"variant": self.variant}
        if self.split in ("train", "val"):
            opts.update(val_fraction=self.val_fraction, split_seed=self.split_seed)
        return opts

    def source_files(self) -> list[Path]:
        return [self.file]

    def read_samples(self) -> list[Data]:
        out = read_h5_split(self.file)
        labels = out["labels"]
        index = np.arange(labels.size)
        if self.split in ("train", "val"):
            train_idx, val_idx = carve_validation(labels, self.val_fraction, self.split_seed)
            index = train_idx if self.split == "train" else val_idx
        return [
            Data(
                pos=as_tensor(out["pos"][i], torch.float32),
                y=torch.tensor([int(labels[i])], dtype=torch.long),
            )
            for i in index
        ]

    def __repr__(self) -> str:
        return f"ScanObjectNN({len(self)}, split={self.split!r}, variant={self.variant!r})"
