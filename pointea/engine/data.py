"""The data of a run: the splits of a task, their transforms and their loaders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..errors import InputError
from .config import TrainConfig

__all__ = [
    "TaskData",
    "build_split",
    "build_task_data",
    "build_transforms",
    "check_point_count",
    "data_root",
    "make_loader",
]


@dataclass
class TaskData:
    """The three splits of a task and what the metrics need to know about them.

    Args:
        train / val / test: datasets of PyG ``Data`` samples (transforms applied inside).
        num_classes: classes (classification) or parts (segmentation).
        class_names: class names (classification) or category names (segmentation).
        category_parts: segmentation only: global part ids of each category.
        val_split: which split selected the best epoch (for the record).
    """

    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    class_names: list[str]
    category_parts: list[list[int]] | None = None
    val_split: str = "val"

    def __repr__(self) -> str:
        return (
            f"TaskData(train={len(self.train)}, val={len(self.val)}, test={len(self.test)}, "
            f"num_classes={self.num_classes})"
        )


def data_root(cfg: TrainConfig) -> Path:
    """The dataset root of ``cfg`` (the offline synthetic set is generated on first use)."""
    if cfg.synthetic and cfg.kind == "semseg":  # procedural rooms in the S3DIS layout
        from ..datasets.synthetic.rooms import write_rooms

        root = Path(cfg.data_root or "data/rooms")
        write_rooms(
            root,
            rooms_per_area=cfg.synthetic_rooms_per_area,
            density=cfg.synthetic_density,
            seed=cfg.split_seed,
        )
        return root
    if cfg.synthetic:
        from ..datasets.synthetic import ensure_synthetic

        kwargs = {"root": cfg.data_root} if cfg.data_root else {}
        return Path(ensure_synthetic(cfg.task, **kwargs))
    return Path(cfg.data_root or "data")


def build_transforms(cfg: TrainConfig, train: bool) -> Callable:
    """The per-sample transform of a split.

    Clouds read from the text archives are first centred and scaled into the unit
    sphere. Classification takes the first ``num_points`` points (the recipe's first 1024 of the
    2048 HDF5 points); segmentation draws ``num_points`` at random (ShapeNetPart's text
    clouds have varying sizes; smaller ones are padded by repetition). Training adds
    PCT's per-axis scale + shift and, when ``point_dropout`` > 0, random point dropout
    (``augment``), then a random order of the points (``shuffle_points``, last, as the
    reference loader does: farthest point sampling then starts at a random point).
    Evaluation keeps the file order.
    """
    from torch_geometric.transforms import Compose

    from .. import transforms as T

    method = "first" if cfg.kind == "classification" else "random"
    steps: list[Callable] = []
    fmt = cfg.data_format or ("hdf5" if cfg.kind == "classification" else "text")
    if fmt in ("resampled", "text"):
        # the text archives are not normalised on disk (PointNet++ normalises on load;
        # the HDF5 archives already are): centre + unit sphere, as pointea-predict does
        steps.append(T.NormalizeUnitSphere())
    steps.append(T.SubsamplePoints(cfg.num_points, method=method))
    if train and cfg.augment:
        steps.append(T.PCTScaleShift())
        if cfg.point_dropout:
            steps.append(T.RandomPointDropout(cfg.point_dropout))
    if train and cfg.shuffle_points:
        steps.append(T.RandomPermute())
    return Compose(steps)


def build_split(
    cfg: TrainConfig, split: str, root: str | Path | None = None, train: bool | None = None
) -> Dataset:
    """One split (``train`` / ``val`` / ``test`` / ``trainval``) of ``cfg.task``.

    Args:
        cfg: resolved settings (dataset, format, points, normals, augmentation).
        split: which split.
        root: dataset root (default: from ``cfg``: ``--data-root`` / synthetic).
        train: use the training transform (default: only for ``"train"``).
    """
    root = Path(root) if root is not None else data_root(cfg)
    if cfg.kind == "semseg":
        return _scene_split(
            cfg, split, root, split in ("train", "trainval") if train is None else train
        )
    transform = build_transforms(cfg, split == "train" if train is None else train)
    common: dict[str, Any] = {
        "transform": transform,
        "use_normals": cfg.use_normals,
        "download": cfg.download,
    }
    if cfg.data_format:
        common["format"] = cfg.data_format
    if cfg.kind == "classification":
        from ..datasets import ModelNet40

        return ModelNet40(
            root, split, val_fraction=cfg.val_fraction, split_seed=cfg.split_seed, **common
        )
    from ..datasets import ShapeNetPart

    return ShapeNetPart(root, split, categories=cfg.categories, **common)


def _scene_split(cfg: TrainConfig, split: str, root: Path, train: bool) -> Dataset:
    """S3DIS rooms of ``split``; training splits as :class:`RoomSamples` of
    ``steps_per_epoch x batch_size`` random samples per epoch."""
    from ..datasets import S3DIS
    from ..datasets.room_samples import RoomSamples

    rooms = S3DIS(root, split, cfg.test_area, cfg.val_fraction)
    if not train:
        return rooms
    if split == "train" and len(rooms) == 0 and len(S3DIS(root, "trainval", cfg.test_area)):
        raise InputError(
            f"--val-fraction {cfg.val_fraction} leaves no training room: every room of "
            "the training areas is a validation room; lower it or use --protocol full-train"
        )
    return RoomSamples(rooms, cfg.num_points, cfg.steps_per_epoch * cfg.batch_size)


def build_task_data(cfg: TrainConfig, root: str | Path | None = None) -> TaskData:
    """The train / val / test datasets of ``cfg.task`` with their transforms.

    ``protocol="validation"``: train on ``train``, select on ``val``;
    ``"full-train"``: train on ``trainval`` (every training shape); ``val`` is still
    built (the trainer does not score it) and nothing is selected.
    """
    root = Path(root) if root is not None else data_root(cfg)
    full = cfg.protocol == "full-train"
    tr = build_split(cfg, "trainval" if full else "train", root, train=True)
    va, te = (build_split(cfg, s, root) for s in ("val", "test"))
    if full:
        selected = "none (full-train protocol: the last epoch is kept)"
    elif cfg.kind == "semseg":
        selected = f"val ({len(va)} rooms of the training areas, never Area {cfg.test_area})"
        if len(va) == 0:
            raise InputError(
                f"--val-fraction {cfg.val_fraction} leaves no validation room among the "
                f"training areas' {len(tr.rooms)} rooms; raise it or use --protocol full-train"
            )
    elif cfg.kind == "classification":
        selected = f"val ({cfg.val_fraction:.0%} of train, split seed {cfg.split_seed})"
    else:
        selected = "val (ShapeNetPart's own)"
    if cfg.kind == "classification":
        return TaskData(tr, va, te, tr.num_classes, list(tr.class_names), None, selected)
    if cfg.kind == "semseg":
        from ..datasets.s3dis import CLASSES

        return TaskData(tr, va, te, len(CLASSES), list(CLASSES), None, selected)
    parts = [list(p) for p in tr.category_parts]
    return TaskData(tr, va, te, tr.num_classes, list(tr.categories), parts, selected)


def check_point_count(data: TaskData, cfg: TrainConfig) -> None:
    """Raise :class:`InputError` when the training clouds do not have ``num_points``."""
    if len(data.train) == 0:
        raise InputError("the training split is empty")
    sample = data.train[0]
    if sample.pos.size(0) != cfg.num_points:
        raise InputError(
            f"--num-points {cfg.num_points}: the training clouds come out with "
            f"{sample.pos.size(0)} points"
        )


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    sampler: Any,
    workers: int,
    device: torch.device,
    drop_last: bool = False,
):
    """A PyG ``DataLoader`` in ``sampler``'s order (pinned memory on CUDA; worker
    processes, when any, kept alive across epochs)."""
    from torch_geometric.loader import DataLoader

    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=workers,
        drop_last=drop_last,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
    )
