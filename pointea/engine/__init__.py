"""Training, evaluation, checkpoints and distributed setup.

* :func:`train` -- one run from a :class:`TrainConfig` to its test numbers
  (:mod:`~pointea.engine.trainer`).
* :func:`evaluate` / :func:`train_one_epoch` -- the epoch loops (:mod:`~pointea.engine.loops`).
* :class:`Callback` -- hooks called at step, checkpoint and epoch end
  (:mod:`~pointea.engine.callbacks`).
* :mod:`~pointea.engine.config` -- :class:`TrainConfig`, the one source of the settings.
* :mod:`~pointea.engine.data` / :mod:`~pointea.engine.factory` -- datasets and loaders;
  model, loss, optimiser and schedule built from a config.
* :mod:`~pointea.engine.seeding` / :mod:`~pointea.engine.resume` -- random streams;
  starting, resuming and restoring a run.
* :mod:`~pointea.engine.checkpoint` -- plain-value checkpoints, atomic writes, checks.
* :mod:`~pointea.engine.distributed` -- torchrun / DDP helpers, CPU-capable synced BN.
* :class:`RunDirectory` -- the run folder, its lock and its files.
"""

from .callbacks import Callback, CallbackList, TensorBoardLogger, TrainState
from .checkpoint import (
    capture_rng_state,
    check_checkpoint_matches,
    load_checkpoint,
    load_model_state,
    restore_rng_state,
    save_checkpoint,
    unwrap_model,
)
from .config import TASKS, TrainConfig
from .data import TaskData, build_task_data
from .distributed import DistContext, DistributedBatchNorm, setup_distributed
from .factory import build_model, loss_function
from .loops import NonFiniteLossError, evaluate, train_one_epoch
from .rundir import RunDirectory
from .trainer import RunResult, train

__all__ = [
    "TASKS",
    "Callback",
    "CallbackList",
    "TensorBoardLogger",
    "TrainState",
    "DistContext",
    "DistributedBatchNorm",
    "NonFiniteLossError",
    "RunDirectory",
    "RunResult",
    "TaskData",
    "TrainConfig",
    "build_model",
    "build_task_data",
    "capture_rng_state",
    "check_checkpoint_matches",
    "evaluate",
    "load_checkpoint",
    "load_model_state",
    "loss_function",
    "restore_rng_state",
    "save_checkpoint",
    "setup_distributed",
    "train",
    "train_one_epoch",
    "unwrap_model",
]
