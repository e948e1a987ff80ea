"""The data of a run: the splits of a task, their transforms and their loaders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..errors import InputError
from ..tasks import TaskData
from .config import TrainConfig

__all__ = [
    "TaskData",
    "build_split",
    "build_task_data",
    "build_transforms",
    "check_point_count",
    "data_root",
    "loader_workers",
    "make_loader",
    "plan_sampling",
]


def data_root(cfg: TrainConfig) -> Path:
    """The dataset root of ``cfg`` (an offline stand-in is written on first use)."""
    return cfg.spec.data_root(cfg)


def build_transforms(cfg: TrainConfig, train: bool) -> Callable:
    """The per-sample transform of a split of ``cfg.task`` (shape tasks; see
    :func:`pointea.tasks.shapes.shape_transforms`)."""
    return cfg.spec.transforms(cfg, train)


def build_split(
    cfg: TrainConfig, split: str, root: str | Path | None = None, train: bool | None = None
) -> Dataset:
    """One split (``train`` / ``val`` / ``test`` / ``trainval``) of ``cfg.task``.

    Args:
        cfg: resolved settings (dataset, format, points, normals, augmentation).
        split: which split.
        root: dataset root (default: from ``cfg``: ``--data-root`` / synthetic).
        train: use the training transform (default: only for the training splits).
    """
    root = Path(root) if root is not None else data_root(cfg)
    if train is None:
        train = split in ("train", "trainval")
    return cfg.spec.split(cfg, split, root, train)


def build_task_data(cfg: TrainConfig, root: str | Path | None = None) -> TaskData:
    """The train / val / test datasets of ``cfg.task`` with their transforms.

    ``protocol="validation"``: train on ``train``, select on ``val``;
    ``"full-train"``: train on ``trainval`` (every training shape); ``val`` is still
    built (the trainer does not score it) and nothing is selected.
    """
    root = Path(root) if root is not None else data_root(cfg)
    return cfg.spec.task_data(cfg, root)


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


def loader_workers(cfg: TrainConfig, device: torch.device) -> int:
    """Data-loader workers: ``cfg.workers``, else 4 on CUDA and 0 on a CPU."""
    return cfg.workers if cfg.workers is not None else (4 if device.type == "cuda" else 0)


def plan_sampling(cfg: TrainConfig, data: TaskData, model: torch.nn.Module, workers: int) -> None:
    """Append the model's :class:`~pointea.nn.sampling_plan.PrecomputeSampling` to every
    split's transform (``precompute_sampling``, by default when there are ``workers`` to
    run it): the loader's workers then compute FPS and kNN, the training step does not."""
    from torch_geometric.transforms import Compose

    from ..nn.sampling_plan import sampling_transform

    enabled = cfg.precompute_sampling if cfg.precompute_sampling is not None else workers > 0
    plan = sampling_transform(model) if enabled else None
    if plan is None:
        return
    for split in (data.train, data.val, data.test):
        steps = [] if split.transform is None else [split.transform]
        split.transform = Compose([*steps, plan])
