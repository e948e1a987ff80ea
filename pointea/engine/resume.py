"""Starting, resuming or overwriting a run folder, and restoring a run's state.

* :func:`prepare_run_dir` locks the folder and applies the rules: a non-empty folder
  needs ``resume`` or ``overwrite``; a resumed run keeps its saved settings, except the
  ones in :data:`RESUME_OVERRIDABLE` (they do not change the numbers).
* :func:`restore_training_state` loads ``last.pt`` into the model, optimiser, schedule,
  scaler and random generators.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..errors import CheckpointError, InputError, TrainingError
from .checkpoint import (
    check_checkpoint_matches,
    load_checkpoint,
    load_model_state,
    restore_rng_state,
)
from .config import TrainConfig, read_saved_config
from .rundir import RunDirectory

__all__ = [
    "RESUME_OVERRIDABLE",
    "ResumePoint",
    "merge_resumed",
    "prepare_run_dir",
    "restore_training_state",
]

#: settings a resumed run may change (they do not alter the numbers)
RESUME_OVERRIDABLE = frozenset({"device", "workers", "data_root", "download", "output_dir"})


def merge_resumed(
    saved: TrainConfig, given: TrainConfig, explicit: Collection[str] | None, source: str
) -> TrainConfig:
    """The saved settings, with the allowed overrides of ``given`` applied.

    Args:
        explicit: the settings the user gave (``None``: compare every field that is set).

    Raises:
        InputError: a setting that changes the numbers differs from the saved run's.
    """
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    consider = names if explicit is None else [n for n in names if n in explicit]
    merged = dataclasses.replace(saved)
    problems = []
    for name in consider:
        new, old = getattr(given, name), getattr(saved, name)
        if name in RESUME_OVERRIDABLE:
            setattr(merged, name, new)
        elif new != old and (explicit is not None or new is not None):
            problems.append(f"{name}: run has {old!r}, given {new!r}")
    if problems:
        raise InputError(
            f"--resume continues the run in {source} with its own settings; these differ: "
            + "; ".join(problems)
            + ". Drop those flags, or start a new run in another --output-dir"
        )
    merged.validate()
    return merged


def prepare_run_dir(
    run: RunDirectory,
    cfg: TrainConfig,
    *,
    resume: bool,
    overwrite: bool,
    explicit: Collection[str] | None,
) -> tuple[TrainConfig, dict[str, Any] | None]:
    """Lock the folder, apply the resume / overwrite rules; returns (config, checkpoint)."""
    run.acquire()
    existing = run.existing_entries()
    if resume:
        run.remove_stale_temporaries()
        if run.last_path.exists():
            ckpt = load_checkpoint(run.last_path)
            saved = read_saved_config(ckpt["config"], f"{run.last_path} (field 'config')")
            return merge_resumed(saved, cfg, explicit, str(run.path)), ckpt
        if run.config_path.exists():  # killed before its first checkpoint: start over
            try:
                data = json.loads(run.config_path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise CheckpointError(f"{run.config_path}: unreadable ({exc})") from exc
            saved = read_saved_config(data, str(run.config_path))
            return merge_resumed(saved, cfg, explicit, str(run.path)), None
        raise CheckpointError(
            f"--resume: nothing to resume in {run.path} (no checkpoints/last.pt and no "
            "config.json); start a new run without --resume"
        )
    if existing and not overwrite:
        raise TrainingError(
            f"output folder {run.path} is not empty ({', '.join(existing[:5])}"
            f"{' ...' if len(existing) > 5 else ''}); pass --resume to continue that run, "
            "--overwrite to replace it, or choose another --output-dir"
        )
    if overwrite:
        run.clear_artifacts()
    return cfg, None


@dataclass
class ResumePoint:
    """Where a resumed run continues: the counters saved with ``last.pt``."""

    epoch: int = 0
    global_step: int = 0
    best_metric: float = -math.inf
    best_epoch: int = 0


def restore_training_state(
    ckpt: dict[str, Any] | None,
    source: Any,
    *,
    model: nn.Module,
    optimizer: Any,
    scheduler: Any,
    scaler: Any,
    task: str,
    model_name: str,
    model_config: dict[str, Any] | None,
    restore_rng: bool,
) -> ResumePoint:
    """Load ``ckpt`` (``None``: a fresh run) into the training objects; returns the
    counters to continue from.

    Raises:
        CheckpointError: the checkpoint is of another task / model, or its optimiser or
            schedule state does not fit.
    """
    if ckpt is None:
        return ResumePoint()
    check_checkpoint_matches(
        ckpt, source, task=task, model_name=model_name, model_config=model_config or None
    )
    load_model_state(model, ckpt["model"], source)
    try:
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
    except (KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{source}: optimizer / scheduler state does not fit: {exc}") from exc
    if restore_rng and "rng" in ckpt:
        restore_rng_state(ckpt["rng"])
    return ResumePoint(
        epoch=int(ckpt["epoch"]),
        global_step=int(ckpt.get("global_step", 0)),
        best_metric=float(ckpt.get("best_metric", -math.inf)),
        best_epoch=int(ckpt.get("best_epoch", 0)),
    )
