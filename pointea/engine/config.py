"""The typed settings of a training run.

:class:`TrainConfig` holds every setting of a run. Fields left at ``None`` are filled by
:meth:`TrainConfig.resolved` from the task's recipe (:attr:`pointea.tasks.Task.recipe`),
the values of the
reference training scripts (docs/REPRODUCING.md lists each value with its source):

classification (``modelnet40``; PCT_Pytorch ``main.py`` / ``data.py``)
    SGD lr 0.01, momentum 0.9, weight decay 5e-4, cosine annealing to lr / 100 over 250
    epochs, batch 32, the first 1024 of the 2048 points, cross-entropy with label
    smoothing 0.2, random point dropout + per-axis scale U[2/3, 3/2] + shift
    U[-0.2, 0.2], and a fresh order of each training cloud's points every epoch.
part segmentation (``shapenetpart``; dgcnn.pytorch ``main_partseg.py``, which PCT's
README points to)
    SGD lr 0.1, momentum 0.9, weight decay 1e-4, cosine annealing to lr / 100 over 200
    epochs, batch 32, 2048 points, cross-entropy over the 50 parts with label smoothing
    0.2 (the repository's ``cal_loss`` default until October 2022), no augmentation
    except the per-epoch point order.
scene semantic segmentation (``s3dis``; pointea's own recipe, docs/SCENES.md)
    AdamW lr 2e-3, weight decay 1e-4, cosine to lr / 100 over 20 epochs of 20 steps,
    batch 4 rooms, 4096 points drawn uniformly from each whole room per sample
    (PointNet / DGCNN train on 4096-point samples of 1 m blocks); validation rooms
    carved from the training areas (``val_fraction``), the test area segmented whole.

Deliberate differences from the references: the references keep the epoch that scores
best on the test set; pointea never selects on test. ``protocol="validation"`` (the
default) selects the best epoch on a validation split (10 % carved from ModelNet40's
train, ShapeNetPart's own val) and trains on the rest; ``protocol="full-train"`` trains
on all training shapes (ShapeNetPart: train + val, as the reference) and keeps the last
epoch. A run with no flags is therefore the reference's recipe under pointea's
validation protocol, not the papers' exact setting.

``config.json`` of a run is :func:`dataclasses.asdict` of the resolved config plus the
pointea / torch versions (:func:`provenance`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..tasks import TASKS, Task

#: the smallest --chunk-size (pointea.models.chunks.MIN_CHUNK; kept here so the
#: settings import without torch)
MIN_CHUNK = 64

__all__ = [
    "ADAM_LR",
    "OPTIMIZERS",
    "PROTOCOLS",
    "SETTING_GROUPS",
    "VERSION_KEYS",
    "TrainConfig",
    "provenance",
    "read_saved_config",
    "setting",
]

#: keys of a saved config.json that are not TrainConfig fields (provenance only)
VERSION_KEYS = (
    "pointea_version",
    "torch_version",
    "torch_geometric_version",
    "python_version",
    "world_size",
    "resolved_device",
)

#: the optimisers of ``--optimizer``
OPTIMIZERS = ("sgd", "adam", "adamw")

#: the two training protocols (see the module docstring)
PROTOCOLS = ("validation", "full-train")

#: learning rate of Adam / AdamW when the task's recipe uses another optimiser
ADAM_LR = 1e-3


def setting(default: Any, help: str, group: str, **cli: Any) -> Any:
    """A :class:`TrainConfig` field with its command-line description.

    Args:
        default: the field's default (``None``: the task's recipe value, or the model's).
        help: one line for ``--help``.
        group: the ``--help`` section (one of :data:`SETTING_GROUPS`).
        cli: argparse details: ``flag`` (default ``--field-name``), ``metavar``,
            ``choices``.
    """
    return dataclasses.field(default=default, metadata={"help": help, "group": group, **cli})


#: the sections of ``pointea-train --help``, in order
SETTING_GROUPS = ("task and model", "data", "optimisation", "run")
_M, _D, _O, _R = SETTING_GROUPS


@dataclass
class TrainConfig:
    """Every setting of a training run (see the module docstring for the defaults).

    Each field carries its help text and ``--help`` section in its metadata
    (:func:`setting`); ``pointea-train`` and ``pointea-seg`` build their flags from
    them. Fields left at ``None`` take the task's recipe value
    (:attr:`pointea.tasks.Task.recipe`) or the
    model's default when resolved.
    """

    task: str = setting(
        "modelnet40",
        "modelnet40: shape classification; shapenetpart: part segmentation; s3dis: "
        "semantic segmentation of rooms",
        _M,
        choices=tuple(TASKS),
    )
    model: str | None = setting(
        None,
        "registry preset: pct_cls / pct_cls_tiny (classification), pct_seg / pct_seg_tiny "
        "(segmentation), pct_semseg / pct_semseg_tiny (s3dis); default: the full model of "
        "the task",
        _M,
        metavar="NAME",
    )
    attention: str = setting(
        "external",
        "attention in the offset-attention layers: external (pointea) or self (PCT's)",
        _M,
        choices=("external", "self"),
    )
    memory_units: int | None = setting(
        None, "external-attention memory size S (default: the model's, 64)", _M, metavar="S"
    )
    heads: int | None = setting(
        None,
        "external-attention heads; > 1 is the multi-head form (default: the model's, 1)",
        _M,
        metavar="H",
    )
    tie_memories: bool | None = setting(
        None,
        "external attention with one memory, M_v = M_k^T (default: the model's, off)",
        _M,
    )
    dropout: float | None = setting(
        None, "dropout of the head (default: the model's, 0.5)", _M, metavar="P"
    )
    use_normals: bool = setting(
        False, "feed the per-point normals as extra features (in_channels=6)", _M, flag="--normals"
    )
    data_root: str | None = setting(
        None,
        "folder holding the dataset folder (default: data; with --synthetic: data/synthetic)",
        _D,
        metavar="DIR",
    )
    data_format: str | None = setting(
        None,
        "on-disk format: hdf5 / resampled (modelnet40), text / hdf5 (shapenetpart); "
        "default: hdf5 / text",
        _D,
        metavar="FMT",
    )
    synthetic: bool = setting(
        False, "use the offline procedural stand-in set (generated on first use)", _D
    )
    download: bool = setting(False, "download the dataset into --data-root when missing", _D)
    categories: list[str] | None = setting(
        None, "shapenetpart: train on these categories only", _D, metavar="NAME"
    )
    variant: str | None = setting(
        None,
        "scanobjectnn: which files: pb_t50_rs (the hardest, default), obj_bg or obj_only",
        _D,
        choices=("pb_t50_rs", "obj_bg", "obj_only"),
    )
    epochs: int | None = setting(None, "number of epochs (the cosine schedule's length)", _O)
    batch_size: int | None = setting(None, "global batch size, split evenly across processes", _O)
    eval_batch_size: int | None = setting(
        None, "validation / test batch size (default: --batch-size)", _O
    )
    num_points: int | None = setting(
        None,
        "points per cloud (classification: the first N of each file's cloud; "
        "segmentation: N drawn at random)",
        _D,
        metavar="N",
    )
    optimizer: str | None = setting(
        None,
        "sgd, adam (Adam at 1e-3 is reported to diverge for PCT) or adamw",
        _O,
        choices=OPTIMIZERS,
    )
    lr: float | None = setting(
        None, "initial learning rate (Adam / AdamW unless the recipe's: 1e-3)", _O
    )
    min_lr: float | None = setting(
        None, "final learning rate of the cosine schedule (default: lr / 100)", _O
    )
    momentum: float = setting(0.9, "SGD momentum", _O)
    weight_decay: float | None = setting(None, "L2 weight decay", _O)
    label_smoothing: float | None = setting(
        None,
        "the reference's smoothing: true class 1 - eps, each other eps / (K - 1)",
        _O,
        metavar="EPS",
    )
    augment: bool | None = setting(
        None, "random scale + shift (+ point dropout) on training clouds", _D
    )
    shuffle_points: bool = setting(
        True,
        "a fresh order of each training cloud's points every epoch (FPS then starts at a "
        "random point); evaluation keeps the file order",
        _D,
    )
    protocol: str = setting(
        "validation",
        "validation: select the best epoch on a validation split; full-train: train on "
        "all training shapes (shapenetpart: train + val) and keep the last epoch",
        _D,
        choices=PROTOCOLS,
    )
    point_dropout: float | None = setting(
        None, "largest share of points replaced by the first point (0: off)", _D, metavar="R"
    )
    val_fraction: float = setting(
        0.1,
        "modelnet40: share of train carved out for validation; s3dis: share of the "
        "training-area rooms",
        _D,
        metavar="F",
    )
    split_seed: int = setting(0, "seed of that validation carve-out (fixed, not --seed)", _D)
    test_area: int = setting(
        5, "s3dis: held-out area (5: the Area-5 protocol; 1..6 in turn: 6-fold CV)", _D
    )
    steps_per_epoch: int | None = setting(
        None, "s3dis: optimiser steps per epoch (each draws --batch-size room samples)", _O
    )
    synthetic_rooms_per_area: int = setting(
        3, "s3dis --synthetic: procedural rooms written per area", _D, metavar="N"
    )
    synthetic_density: float = setting(
        150.0, "s3dis --synthetic: points per square metre of surface", _D, metavar="D"
    )
    chunk_size: int = setting(
        65_536,
        "s3dis: points per chunk of the exact whole-room inference; memory grows with it, "
        "time shrinks; smaller than 64 is refused (it only adds per-chunk overhead)",
        _R,
        metavar="N",
    )
    block_vote: bool = setting(
        False, "s3dis: also score the test area with 1 m blocks and voting (side by side)", _R
    )
    seed: int = setting(0, "seed of initialisation, shuffling, augmentation and dropout", _R)
    device: str = setting("auto", "auto (CUDA when present), cpu, cuda, cuda:1 ...", _R)
    workers: int | None = setting(
        None, "data-loader worker processes (default: 0 on CPU, 4 on CUDA)", _R
    )
    precompute_sampling: bool | None = setting(
        None,
        "compute the classifier's farthest point sampling and kNN per cloud in the "
        "data-loader workers, off the training step (default: on when --workers > 0)",
        _R,
    )
    amp: bool = setting(False, "float16 mixed precision with gradient scaling (CUDA only)", _R)
    bf16: bool = setting(False, "bfloat16 autocast (CPU or CUDA)", _R)
    sync_bn: bool = setting(True, "synchronise BatchNorm across processes when distributed", _R)
    tf32: bool = setting(
        True, "TF32 matrix products and convolutions on CUDA (off: full float32)", _R
    )
    deterministic: bool = setting(
        False,
        "deterministic algorithms only (sets CUBLAS_WORKSPACE_CONFIG on CUDA; slower there)",
        _R,
    )
    skip_nonfinite: bool = setting(
        False, "skip batches with a NaN/inf loss instead of stopping the run", _O
    )
    grad_clip: float | None = setting(
        None, "clip the gradient norm to this value (default: off)", _O, metavar="NORM"
    )
    output_dir: str = setting(
        "runs/pointea", "run folder (default: runs/<task>-<attention>-<time>)", _R, metavar="DIR"
    )

    @property
    def spec(self) -> Task:
        """The :class:`~pointea.tasks.Task` of ``task``."""
        from ..tasks import get_task

        return get_task(self.task)

    @property
    def kind(self) -> str:
        """What the task's model predicts: ``"classification"``, ``"segmentation"`` or
        ``"semseg"``."""
        return self.spec.kind

    @property
    def selection_metric(self) -> str:
        """Validation metric that picks ``best.pt``."""
        return self.spec.metric

    def resolved(self) -> TrainConfig:
        """A copy with every ``None`` recipe default filled in, validated."""
        self.validate()
        recipe = self.spec.recipe
        cfg = dataclasses.replace(self)
        cfg.model = cfg.model or self.spec.model
        for name, value in recipe.items():  # optimizer first: it decides the lr
            if getattr(cfg, name) is None:
                own = name != "lr" or cfg.optimizer in (recipe["optimizer"], "sgd")
                setattr(cfg, name, value if own else ADAM_LR)
        if cfg.min_lr is None:
            cfg.min_lr = cfg.lr / 100
        if cfg.eval_batch_size is None:
            cfg.eval_batch_size = cfg.batch_size
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise :class:`~pointea.errors.InputError` naming each bad setting."""
        problems: list[str] = []
        if self.task not in TASKS:
            raise InputError(f"invalid settings: task {self.task!r} is not one of {sorted(TASKS)}")
        if self.attention not in ("external", "self"):
            problems.append(f"attention must be 'external' or 'self', got {self.attention!r}")
        if self.memory_units is not None:
            if self.attention != "external":
                problems.append("memory_units (--memory-units) only applies to external attention")
            elif self.memory_units < 1:
                problems.append(f"memory_units must be >= 1, got {self.memory_units}")
        if self.heads is not None:
            if self.attention != "external":
                problems.append("heads (--heads) only applies to external attention")
            elif self.heads < 1:
                problems.append(f"heads must be >= 1, got {self.heads}")
        if self.tie_memories and self.attention != "external":
            problems.append("tie_memories (--tie-memories) only applies to external attention")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.optimizer is not None and self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.protocol not in PROTOCOLS:
            problems.append(f"protocol must be one of {list(PROTOCOLS)}, got {self.protocol!r}")
        if self.epochs is not None and self.epochs < 1:
            problems.append(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 2:
            problems.append(
                f"batch_size must be >= 2 (BatchNorm needs at least 2 clouds per training "
                f"batch), got {self.batch_size}"
            )
        for name in ("eval_batch_size", "num_points"):
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
        if self.weight_decay is not None and self.weight_decay < 0:
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
        problems += self._scene_problems()
        problems += self.spec.problems(self)
        if problems:
            raise InputError("invalid settings: " + "; ".join(problems))

    def _scene_problems(self) -> list[str]:
        """The ranges of the scene settings (whether they apply is the task's question)."""
        problems: list[str] = []
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            problems.append(f"steps_per_epoch must be >= 1, got {self.steps_per_epoch}")
        if self.chunk_size < MIN_CHUNK:
            problems.append(
                f"chunk_size (--chunk-size) must be >= {MIN_CHUNK} (smaller chunks only add "
                f"per-chunk overhead), got {self.chunk_size}"
            )
        if self.synthetic_rooms_per_area < 1:
            problems.append(
                f"synthetic_rooms_per_area must be >= 1, got {self.synthetic_rooms_per_area}"
            )
        if not self.synthetic_density > 0:
            problems.append(f"synthetic_density must be > 0, got {self.synthetic_density}")
        if self.test_area not in range(1, 7):
            problems.append(f"test_area must be one of 1..6, got {self.test_area}")
        return problems

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
    ``config`` field): provenance keys dropped, unknown keys an error naming ``source``,
    settings newer than the run at the value that reproduces it."""
    if not isinstance(data, dict):
        raise InputError(
            f"{source}: a saved config must be a JSON object, got {type(data).__name__}"
        )
    settings = {k: v for k, v in data.items() if k not in VERSION_KEYS}
    # runs saved before the per-epoch point order existed trained without it
    settings.setdefault("shuffle_points", False)
    return TrainConfig.from_dict(settings, source=source)


def provenance(world_size: int, device: Any) -> dict[str, Any]:
    """The :data:`VERSION_KEYS` of a run's ``config.json`` (versions, processes, device)."""
    import platform

    import torch
    import torch_geometric

    from .. import __version__

    return {
        "pointea_version": __version__,
        "torch_version": str(torch.__version__),
        "torch_geometric_version": torch_geometric.__version__,
        "python_version": platform.python_version(),
        "world_size": world_size,
        "resolved_device": str(device),
    }
