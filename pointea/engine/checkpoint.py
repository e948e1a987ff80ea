"""Training checkpoints: plain values only, written atomically, checked when read.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts (never a module,
an ``argparse.Namespace`` or a DDP-wrapped state dict), so
``torch.load(path, weights_only=True)`` reads it. Keys (docs/ARCHITECTURE.md)::

    format="pointea-checkpoint", format_version=2, task, kind, model_name, model_config,
    model, optimizer, scheduler, scaler, epoch (completed), global_step, rng, config,
    class_names, best_metric, best_epoch, metrics, pointea_version, torch_version

``task`` is the recipe's name (``modelnet40``), ``kind`` what the model predicts
(``classification``). Format 1 stored the kind under ``task`` and had no ``kind``;
:func:`checkpoint_task` and :func:`checkpoint_kind` read both formats.

Writes go through :func:`pointea.serialization.atomic_torch_save`: a run killed while
saving leaves the previous file complete; a full disk raises
:class:`~pointea.errors.TrainingError` and the previous file stays as it was.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..errors import CheckpointError, TrainingError
from ..models.hub import check_unique_names
from ..serialization import atomic_torch_save, safe_torch_load
from ..tasks import KINDS, TASKS, task_of_kind

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "assemble_checkpoint",
    "capture_rng_state",
    "check_checkpoint_matches",
    "checkpoint_kind",
    "checkpoint_task",
    "is_training_checkpoint",
    "load_checkpoint",
    "load_model_state",
    "restore_rng_state",
    "save_checkpoint",
    "unwrap_model",
]

CHECKPOINT_FORMAT = "pointea-checkpoint"
CHECKPOINT_VERSION = 2
REQUIRED_KEYS = (
    "format",
    "format_version",
    "task",
    "model_name",
    "model_config",
    "model",
    "epoch",
    "config",
)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel / DataParallel / compiled wrapper."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile
            model = model._orig_mod
        else:
            return model


def capture_rng_state() -> dict[str, Any]:
    """The torch (CPU and CUDA), numpy and Python RNG states as plain values."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def _to_lists(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_lists(v) for v in value]
    return value


def _to_tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_to_tuples(v) for v in value)
    return value


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (missing parts are left alone)."""
    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu().to(torch.uint8))
    if "numpy" in state:
        s = state["numpy"]
        np.random.set_state(
            (
                s["name"],
                s["keys"].numpy().astype(np.uint32),
                s["pos"],
                s["has_gauss"],
                s["cached_gaussian"],
            )
        )
    if "python" in state:
        random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        states = state["cuda"]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu().to(torch.uint8) for s in states])


def checkpoint_kind(checkpoint: Mapping[str, Any]) -> str | None:
    """What the checkpoint's model predicts (``classification`` / ``segmentation`` /
    ``semseg``), from ``kind`` or, in format 1, from ``task``."""
    kind = checkpoint.get("kind")
    if kind is None and checkpoint.get("task") in KINDS:
        kind = checkpoint["task"]
    return kind if isinstance(kind, str) else None


def checkpoint_task(checkpoint: Mapping[str, Any]) -> str | None:
    """The task (recipe) a checkpoint was trained on: its ``task`` field, or in format 1
    its saved config's ``task``, or the first task of its kind."""
    task = checkpoint.get("task")
    if isinstance(task, str) and task in TASKS:
        return task
    config = checkpoint.get("config")
    if isinstance(config, Mapping) and config.get("task") in TASKS:
        return str(config["task"])
    kind = checkpoint_kind(checkpoint)
    return task_of_kind(kind).name if kind in KINDS else None


def assemble_checkpoint(
    *,
    task: str,
    kind: str,
    model_name: str,
    model_config: dict[str, Any],
    model: nn.Module,
    optimizer: Any,
    scheduler: Any,
    scaler: Any,
    epoch: int,
    global_step: int,
    config: dict[str, Any],
    class_names: list[str],
    best_metric: float,
    best_epoch: int,
    metrics: dict[str, Any],
) -> dict[str, Any]:
    """The checkpoint dict of a training run after ``epoch`` (plain values, CPU tensors;
    the random states of this process included)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "task": task,
        "kind": kind,
        "model_name": model_name,
        "model_config": model_config,
        "model": {k: v.detach().cpu() for k, v in unwrap_model(model).state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "epoch": epoch,
        "global_step": global_step,
        "rng": capture_rng_state(),
        "config": config,
        "class_names": list(class_names),
        "best_metric": best_metric,
        "best_epoch": best_epoch,
        "metrics": metrics,
        "pointea_version": __version__,
        "torch_version": str(torch.__version__),
    }


def save_checkpoint(checkpoint: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``checkpoint`` atomically to ``path``.

    Raises:
        TrainingError: the file could not be written (disk full, folder read-only ...);
            the previous file at ``path`` is intact.
    """
    path = Path(path)
    try:
        return atomic_torch_save(dict(checkpoint), path)
    except OSError as exc:
        previous = (
            "the previous checkpoint there is intact"
            if path.exists()
            else ("no earlier checkpoint existed there")
        )
        raise TrainingError(
            f"could not save checkpoint {path}: {exc.strerror or exc} "
            f"(errno {exc.errno}); {previous}"
        ) from exc


def is_training_checkpoint(obj: Any) -> bool:
    """True for a dict written by the pointea trainer."""
    return isinstance(obj, Mapping) and obj.get("format") == CHECKPOINT_FORMAT


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read and check a pointea training checkpoint.

    Raises:
        CheckpointError: unreadable, unsafe, not a pointea training checkpoint, a newer
            format, missing fields (each listed) or a class name given twice.
    """
    path = Path(path)
    obj = safe_torch_load(path, map_location=map_location)
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{path}: not a pointea training checkpoint (holds a {type(obj).__name__}, "
            "expected a dict)"
        )
    if obj.get("format") != CHECKPOINT_FORMAT:
        keys = sorted(map(str, obj))[:8]
        raise CheckpointError(
            f"{path}: not a pointea training checkpoint (field 'format' is "
            f"{obj.get('format')!r}, expected {CHECKPOINT_FORMAT!r}; top-level keys: {keys}). "
            "A pretrained folder or a converted PCT file is read by pointea.models.load_model"
        )
    version = obj.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format_version {version!r} is not supported "
            f"(this pointea {__version__} reads up to {CHECKPOINT_VERSION}); upgrade pointea"
        )
    missing = [k for k in REQUIRED_KEYS if k not in obj]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks the fields {missing} (truncated?)")
    names = obj.get("class_names")
    if isinstance(names, (list, tuple)):
        check_unique_names([str(n) for n in names], str(path))
    return dict(obj)


def check_checkpoint_matches(
    checkpoint: Mapping[str, Any],
    path: str | os.PathLike,
    *,
    task: str | None = None,
    model_name: str | None = None,
    model_config: Mapping[str, Any] | None = None,
) -> None:
    """Raise :class:`CheckpointError` listing every field that differs from the expected.

    Args:
        checkpoint: a dict from :func:`load_checkpoint`.
        path: its file (for the message).
        task: expected task name (``"modelnet40"``; format 1 checkpoints compare by
            :func:`checkpoint_task`).
        model_name: expected registry name.
        model_config: expected model hyper-parameters (each key compared).
    """
    problems: list[str] = []
    if task is not None and checkpoint_task(checkpoint) != task:
        problems.append(f"task: checkpoint {checkpoint_task(checkpoint)!r}, expected {task!r}")
    if model_name is not None and checkpoint.get("model_name") != model_name:
        problems.append(
            f"model: checkpoint {checkpoint.get('model_name')!r}, expected {model_name!r}"
        )
    if model_config is not None:
        saved = checkpoint.get("model_config") or {}
        for key in sorted(set(saved) | set(model_config)):
            if saved.get(key, "<absent>") != model_config.get(key, "<absent>"):
                problems.append(
                    f"model_config.{key}: checkpoint {saved.get(key, '<absent>')!r}, "
                    f"expected {model_config.get(key, '<absent>')!r}"
                )
    if problems:
        raise CheckpointError(f"{path}: checkpoint does not match this run: " + "; ".join(problems))


def load_model_state(
    model: nn.Module, state_dict: Mapping[str, Any], path: str | os.PathLike
) -> None:
    """``load_state_dict(strict=True)`` with a :class:`CheckpointError` listing the
    missing, unexpected and wrongly shaped parameters."""
    model = unwrap_model(model)
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state_dict
        and isinstance(state_dict[k], torch.Tensor)
        and state_dict[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} (e.g. {missing[:4]})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} (e.g. {unexpected[:4]})")
        if shapes:
            parts.append(f"shape mismatch (checkpoint vs model) {shapes[:4]}")
        raise CheckpointError(
            f"{path}: the weights do not fit the model {type(model).__name__}: " + "; ".join(parts)
        )
    model.load_state_dict(state_dict, strict=True)
