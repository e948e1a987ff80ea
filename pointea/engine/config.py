"""The typed settings of a training run.

:class:`TrainConfig` holds every setting of a run. Fields left at ``None`` are filled by
:meth:`TrainConfig.resolved` with the published recipe of the task (DESIGN.md section 2),
so a run with no flags reproduces the papers' setting:

classification (``modelnet40``)
    SGD lr 0.01, momentum 0.9, weight decay 5e-4, cosine annealing to 1e-4 over 250
    epochs, batch 32, the first 1024 of the 2048 points, cross-entropy with label
    smoothing 0.2, per-axis scale U[2/3, 3/2] + shift U[-0.2, 0.2] + random point
    dropout; the best epoch is chosen on a validation split carved from train (10 %).
part segmentation (``shapenetpart``)
    the same optimiser and schedule (SGD 0.01, momentum 0.9, weight decay 5e-4, cosine
    to 1e-4, 250 epochs, as the PCT reimplementations use for both tasks), batch 16,
    2048 points, plain cross-entropy over the 50 parts (no label smoothing), scale +
    shift augmentation (no point dropout: it would change the labelled points); the
    best epoch is chosen on ShapeNetPart's own val split, the final numbers come from test.

``config.json`` of a run is :func:`dataclasses.asdict` of the resolved config plus the
pointea / torch versions.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ..errors import InputError

__all__ = ["TASKS", "VERSION_KEYS", "TrainConfig", "read_saved_config"]

#: task name -> (kind of task, default model, checkpoint selection metric)
TASKS: dict[str, dict[str, str]] = {
    "modelnet40": {
        "kind": "classification",
        "model": "pct_cls",
        "metric": "overall_accuracy",
    },
    "shapenetpart": {
        "kind": "segmentation",
        "model": "pct_seg",
        "metric": "instance_miou",
    },
}

#: keys of a saved config.json that are not TrainConfig fields (provenance only)
VERSION_KEYS = (
    "pointea_version",
    "torch_version",
    "torch_geometric_version",
    "python_version",
    "world_size",
    "resolved_device",
)

_RECIPE: dict[str, dict[str, Any]] = {
    "modelnet40": {
        "batch_size": 32,
        "num_points": 1024,
        "label_smoothing": 0.2,
        "point_dropout": 0.875,
    },
    "shapenetpart": {
        "batch_size": 16,
        "num_points": 2048,
        "label_smoothing": 0.0,
        "point_dropout": 0.0,
    },
}


@dataclass
class TrainConfig:
    """Every setting of a training run (see the module docstring for the defaults).

    Args:
        task: ``"modelnet40"`` (classification) or ``"shapenetpart"`` (part segmentation).
        model: registry name (``pct_cls``, ``pct_cls_tiny``, ``pct_seg``, ``pct_seg_tiny``);
            ``None``: the task's full model.
        attention: ``"external"`` (pointea) or ``"self"`` (PCT's offset self-attention).
        memory_units: external-attention memory size S (``None``: the model's default, 64).
        dropout: head dropout (``None``: the model's default, 0.5).
        use_normals: feed the normals as extra point features (``in_channels=6``).
        data_root: dataset folder (``None``: ``data/<dataset folder>``).
        data_format: dataset on-disk format (``None``: the dataset's default).
        synthetic: use the offline procedural stand-in data instead of the real set.
        download: download the dataset when missing.
        categories: segmentation only: restrict to these category names.
        epochs: number of epochs.
        batch_size: global batch size (split evenly across distributed processes).
        eval_batch_size: batch size for validation / test (``None``: ``batch_size``).
        num_points: points per cloud (the first ``num_points`` of each file's cloud).
        optimizer: ``"sgd"`` or ``"adam"``.
        lr: initial learning rate (``None``: 0.01 for SGD, 1e-3 for Adam).
        min_lr: final learning rate of the cosine schedule (``None``: lr / 100).
        momentum: SGD momentum.
        weight_decay: L2 weight decay.
        label_smoothing: the reference's smoothing: the true class gets ``1 - eps``, each
            other class ``eps / (K - 1)``.
        augment: random scale + shift (+ point dropout) on training clouds.
        point_dropout: largest fraction of points replaced by the first point (0: off).
        val_fraction: classification: share of train carved out as validation split.
        split_seed: seed of that carve-out (fixed, independent of ``seed``).
        seed: seed of initialisation, shuffling, augmentation and dropout.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...
        workers: data-loader worker processes (``None``: 0 on CPU, 4 on CUDA).
        amp: float16 mixed precision with gradient scaling (CUDA only).
        bf16: bfloat16 autocast (CPU or CUDA).
        sync_bn: synchronise BatchNorm statistics across processes when distributed.
        skip_nonfinite: skip batches whose loss is NaN/inf instead of stopping.
        grad_clip: clip the gradient norm to this value (``None``: off).
        output_dir: the run folder.
    """

    task: str = "modelnet40"
    model: str | None = None
    attention: str = "external"
    memory_units: int | None = None
    dropout: float | None = None
    use_normals: bool = False
    data_root: str | None = None
    data_format: str | None = None
    synthetic: bool = False
    download: bool = False
    categories: list[str] | None = None
    epochs: int = 250
    batch_size: int | None = None
    eval_batch_size: int | None = None
    num_points: int | None = None
    optimizer: str = "sgd"
    lr: float | None = None
    min_lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float | None = None
    augment: bool = True
    point_dropout: float | None = None
    val_fraction: float = 0.1
    split_seed: int = 0
    seed: int = 0
    device: str = "auto"
    workers: int | None = None
    amp: bool = False
    bf16: bool = False
    sync_bn: bool = True
    skip_nonfinite: bool = False
    grad_clip: float | None = None
    output_dir: str = "runs/pointea"

    @property
    def kind(self) -> str:
        """``"classification"`` or ``"segmentation"``."""
        return TASKS[self.task]["kind"]

    @property
    def selection_metric(self) -> str:
        """Validation metric that picks ``best.pt``."""
        return TASKS[self.task]["metric"]

    def resolved(self) -> TrainConfig:
        """A copy with every ``None`` recipe default filled in, validated."""
        self.validate()
        recipe = _RECIPE[self.task]
        cfg = dataclasses.replace(self)
        cfg.model = cfg.model or TASKS[cfg.task]["model"]
        for name in ("batch_size", "num_points", "label_smoothing", "point_dropout"):
            if getattr(cfg, name) is None:
                setattr(cfg, name, recipe[name])
        if cfg.lr is None:
            cfg.lr = 0.01 if cfg.optimizer == "sgd" else 1e-3
        if cfg.min_lr is None:
            cfg.min_lr = 1e-4 if (cfg.optimizer == "sgd" and cfg.lr == 0.01) else cfg.lr / 100
        if cfg.eval_batch_size is None:
            cfg.eval_batch_size = cfg.batch_size
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise :class:`~pointea.errors.InputError` naming each bad setting."""
        problems: list[str] = []
        if self.task not in TASKS:
            problems.append(f"task {self.task!r} is not one of {sorted(TASKS)}")
        if self.attention not in ("external", "self"):
            problems.append(f"attention must be 'external' or 'self', got {self.attention!r}")
        if self.memory_units is not None:
            if self.attention != "external":
                problems.append("memory_units (--memory-units) only applies to external attention")
            elif self.memory_units < 1:
                problems.append(f"memory_units must be >= 1, got {self.memory_units}")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.optimizer not in ("sgd", "adam"):
            problems.append(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1, got {self.epochs}")
        for name in ("batch_size", "eval_batch_size", "num_points"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name} must be >= 1, got {value}")
        for name in ("lr", "min_lr"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                problems.append(f"{name} must be a positive number, got {value}")
        if self.lr is not None and self.min_lr is not None and self.min_lr > self.lr:
            problems.append(f"min_lr ({self.min_lr}) is larger than lr ({self.lr})")
        if not 0.0 <= self.momentum < 1.0:
            problems.append(f"momentum must lie in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.label_smoothing is not None and not 0.0 <= self.label_smoothing < 1.0:
            problems.append(f"label_smoothing must lie in [0, 1), got {self.label_smoothing}")
        if self.point_dropout is not None and not 0.0 <= self.point_dropout < 1.0:
            problems.append(f"point_dropout must lie in [0, 1), got {self.point_dropout}")
        if not 0.0 < self.val_fraction < 1.0:
            problems.append(f"val_fraction must lie in (0, 1), got {self.val_fraction}")
        if self.workers is not None and self.workers < 0:
            problems.append(f"workers must be >= 0, got {self.workers}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            problems.append(f"grad_clip must be > 0, got {self.grad_clip}")
        if self.amp and self.bf16:
            problems.append("amp (--amp, float16) and bf16 (--bf16) exclude each other")
        if self.synthetic and self.download:
            problems.append("synthetic (--synthetic) data is generated offline; drop --download")
        if self.categories is not None and self.task != "shapenetpart":
            problems.append("categories (--categories) only applies to part segmentation")
        if self.model is not None and self.task in TASKS:
            kind = TASKS[self.task]["kind"]
            wrong = "_seg" if kind == "classification" else "_cls"
            if wrong in self.model:
                problems.append(
                    f"model {self.model!r} is a "
                    f"{'segmentation' if wrong == '_seg' else 'classification'} model, "
                    f"but task {self.task!r} is {kind}"
                )
        if problems:
            raise InputError("invalid settings: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """Plain-value dict (``dataclasses.asdict``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> TrainConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys are an error naming ``source``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(f"{source}: unknown settings {unknown}")
        return cls(**{k: v for k, v in data.items() if k in names})

    def __repr__(self) -> str:
        return (
            f"TrainConfig(task={self.task!r}, model={self.model!r}, "
            f"attention={self.attention!r}, epochs={self.epochs}, "
            f"batch_size={self.batch_size}, lr={self.lr}, output_dir={self.output_dir!r})"
        )


def read_saved_config(data: dict[str, Any], source: str) -> TrainConfig:
    """The :class:`TrainConfig` of a saved run (``config.json`` or a checkpoint's
    ``config`` field): provenance keys dropped, unknown keys an error naming ``source``."""
    if not isinstance(data, dict):
        raise InputError(
            f"{source}: a saved config must be a JSON object, got {type(data).__name__}"
        )
    return TrainConfig.from_dict(
        {k: v for k, v in data.items() if k not in VERSION_KEYS}, source=source
    )
