"""Hooks into the training loop: subclass :class:`Callback` and pass ``callbacks=[...]``
to :func:`pointea.engine.train`.

Every hook gets the :class:`TrainState` of the run (settings, model, optimizer, counters,
history). Hooks run on every process; the ones about files (:meth:`Callback.on_checkpoint`)
only where files are written (rank 0). Order within an epoch::

    on_train_start
    for each epoch:
        for each step: on_forward_end -> (loss, backward, step) -> on_step_end
        (validation) -> checkpoints written -> on_checkpoint -> metrics.jsonl -> on_epoch_end
    (test of best.pt) -> on_train_end

Example -- stop after epoch 2 as a Ctrl-C would::

    class StopAfter(Callback):
        def on_epoch_end(self, state, record):
            if record["epoch"] == 2:
                raise KeyboardInterrupt
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from ..errors import InputError
from .config import TrainConfig
from .distributed import DistContext
from .rundir import RunDirectory

__all__ = ["Callback", "CallbackList", "TensorBoardLogger", "TrainState", "TrainingCurves"]


@dataclass
class TrainState:
    """What a hook may read (and, with care, change) during a run.

    Args:
        cfg: the resolved settings.
        ctx: the process (rank, world size, device).
        run: the run folder.
        model: the model being trained (not wrapped in DDP).
        optimizer / scheduler: the optimiser and its learning-rate schedule.
        scaler: the float16 gradient scaler (``None`` without ``amp``).
        model_name / model_config: the registry name and constructor arguments.
        epoch: the current epoch (1-based; 0 before the first).
        step: the step within the epoch (1-based).
        global_step: optimiser steps taken since the start of the run.
        best_metric / best_epoch: the best validation score so far and its epoch.
        history: one record per finished epoch (as in ``metrics.jsonl``).
    """

    cfg: TrainConfig
    ctx: DistContext
    run: RunDirectory
    model: nn.Module
    optimizer: Any
    scheduler: Any
    scaler: Any = None
    model_name: str = ""
    model_config: dict[str, Any] = field(default_factory=dict)
    epoch: int = 0
    step: int = 0
    global_step: int = 0
    best_metric: float = float("-inf")
    best_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


class Callback:
    """Base class of the training hooks; every method does nothing by default."""

    def on_train_start(self, state: TrainState) -> None:
        """Before the first epoch of this session (after a resume restored the state)."""

    def on_forward_end(self, state: TrainState, batch: Any, logits: Tensor) -> Tensor | None:
        """After a training forward pass; return a tensor to replace the logits."""
        return None

    def on_step_end(self, state: TrainState, loss: Tensor) -> None:
        """After a training step (``loss`` detached, still on the device: no sync)."""

    def on_checkpoint(self, state: TrainState, paths: list[Path]) -> None:
        """After the epoch's checkpoints were written (rank 0 only)."""

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        """After an epoch: validated, checkpointed and logged (``record``: its metrics)."""

    def on_train_end(self, state: TrainState, test_record: dict[str, Any]) -> None:
        """After the best checkpoint was evaluated on test."""


class CallbackList(Callback):
    """Calls each callback in order."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks: {cb!r} is not a pointea.engine.Callback")

    def on_train_start(self, state: TrainState) -> None:
        for cb in self.callbacks:
            cb.on_train_start(state)

    def on_forward_end(self, state: TrainState, batch: Any, logits: Tensor) -> Tensor | None:
        for cb in self.callbacks:
            out = cb.on_forward_end(state, batch, logits)
            if out is not None:
                logits = out
        return logits

    def on_step_end(self, state: TrainState, loss: Tensor) -> None:
        for cb in self.callbacks:
            cb.on_step_end(state, loss)

    def on_checkpoint(self, state: TrainState, paths: list[Path]) -> None:
        for cb in self.callbacks:
            cb.on_checkpoint(state, paths)

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(state, record)

    def on_train_end(self, state: TrainState, test_record: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb.on_train_end(state, test_record)

    def __repr__(self) -> str:
        return f"CallbackList({self.callbacks!r})"


class TrainingCurves(Callback):
    """Redraws ``training_curves.png`` after each epoch (rank 0; a failure only warns)."""

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        if not state.ctx.is_main:
            return
        from .plots import plot_training_curves

        cfg, run = state.cfg, state.run
        try:
            plot_training_curves(
                state.history,
                run.curves_path,
                f"val_{cfg.selection_metric}",
                title=f"{cfg.task} / {cfg.model} / {cfg.attention} attention",
            )
        except OSError as exc:  # a figure is not worth stopping a run for
            print(f"warning: could not write {run.curves_path}: {exc}", file=sys.stderr)


class TensorBoardLogger(Callback):
    """Writes each epoch's numbers (and the final test numbers) as TensorBoard scalars
    under ``<run folder>/tensorboard`` (rank 0). ``tensorboard --logdir runs`` shows them.

    Raises:
        InputError: the ``tensorboard`` package is not installed.
    """

    def __init__(self, subdir: str = "tensorboard") -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise InputError(
                "--tensorboard needs the tensorboard package (pip install tensorboard); "
                f"it could not be imported: {exc}"
            ) from exc
        self._writer_class, self.subdir, self.writer = SummaryWriter, subdir, None

    def on_train_start(self, state: TrainState) -> None:
        if state.ctx.is_main:
            self.writer = self._writer_class(str(state.run.path / self.subdir))

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for key, value in record.items():
            if key not in ("epoch", "best_epoch") and isinstance(value, (int, float)):
                self.writer.add_scalar(key.replace("_", "/", 1), value, record["epoch"])
        self.writer.flush()

    def on_train_end(self, state: TrainState, test_record: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for key, value in test_record.items():
            if isinstance(value, float):
                self.writer.add_scalar(f"test/{key}", value, int(test_record["epoch"]))
        self.writer.close()
        self.writer = None
