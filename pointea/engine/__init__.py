"""Training, evaluation, checkpoints and distributed setup.

* :func:`train` -- one run from a :class:`TrainConfig` to its test numbers
  (:mod:`~pointea.engine.trainer`).
* :func:`evaluate` -- metrics of a model on a loader (voting optional).
* :mod:`~pointea.engine.checkpoint` -- plain-value checkpoints, atomic writes, checks.
* :mod:`~pointea.engine.distributed` -- torchrun / DDP helpers, CPU-capable synced BN.
* :class:`RunDirectory` -- the run folder, its lock and its files.
"""

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
from .distributed import DistContext, DistributedBatchNorm, setup_distributed
from .rundir import RunDirectory
from .trainer import (
    NonFiniteLossError,
    RunResult,
    TaskData,
    build_model,
    build_task_data,
    evaluate,
    loss_function,
    train,
)

__all__ = [
    "TASKS",
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
    "unwrap_model",
]
