"""One training run, from a :class:`TrainConfig` to its test numbers.

:func:`train` does, in order: join the process group under ``torchrun``, lock and check
the run folder (:mod:`.resume`), build the datasets and loaders (:mod:`.data`), the model,
loss and optimiser (:mod:`.factory`), restore a checkpoint when resuming, then for each
epoch train and validate (:mod:`.loops`) and write ``metrics.jsonl``,
``checkpoints/best.pt`` (best on validation, never on test) and ``checkpoints/last.pt``
(:mod:`.checkpoint`); finally it evaluates ``best.pt`` on the test split and writes
``test_metrics.json``. Hooks (:mod:`.callbacks`) are called at step, checkpoint and
epoch end.

Reproducibility (:mod:`.seeding`): every source of randomness is re-seeded from
``(seed, epoch)`` at the start of each epoch (shuffling, dropout) and from
``(seed, epoch, sample index)`` for each sample's augmentation, so an epoch's random
stream never depends on history, on the number of data-loader workers, on the number of
processes or on the display options. A run stopped after epoch k and resumed therefore
ends with the same parameters and metrics as an uninterrupted run (CPU, fixed seed).
Checkpoints are written after each epoch, best.pt before last.pt, so last.pt never
claims a best epoch that is not on disk.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import InputError, PointeaError, TrainingError
from .callbacks import Callback, CallbackList, TrainingCurves, TrainState
from .checkpoint import assemble_checkpoint, load_checkpoint, load_model_state, save_checkpoint
from .config import TrainConfig, provenance
from .data import (
    TaskData,
    build_split,
    build_task_data,
    build_transforms,
    check_point_count,
    loader_workers,
    make_loader,
    plan_sampling,
)
from .distributed import (
    DistContext,
    ShardSampler,
    broadcast_object,
    cleanup_distributed,
    convert_batchnorm,
    setup_distributed,
)
from .factory import build_model, build_optimizer, build_scheduler, loss_function
from .loops import NonFiniteLossError, evaluate, train_one_epoch
from .precision import autocast, deterministic, tf32
from .progress import bars_wanted
from .report import format_epoch_line, format_summary
from .resume import RESUME_OVERRIDABLE, prepare_run_dir, restore_training_state
from .rundir import RunDirectory
from .seeding import EpochSeededDataset, derive_seed, seed_everything

__all__ = [
    "RESUME_OVERRIDABLE",
    "EpochSeededDataset",
    "NonFiniteLossError",
    "RunResult",
    "TaskData",
    "autocast",
    "build_model",
    "build_split",
    "build_task_data",
    "build_transforms",
    "derive_seed",
    "evaluate",
    "loss_function",
    "make_loader",
    "train",
]


#: evaluation entries kept out of ``metrics.jsonl`` (tables, not numbers per epoch)
_PER_CLASS_KEYS = frozenset(
    {"loss", "per_class_accuracy", "per_category_iou", "per_class_iou", "class_names", "confusion"}
)


@dataclass
class RunResult:
    """What :func:`train` returns (on every process; files only on rank 0)."""

    output_dir: Path
    best_epoch: int
    best_metric: float
    test_metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Loaders:
    train: Any
    sampler: Any
    val: Any
    test: Any
    train_set: EpochSeededDataset


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    explicit: Collection[str] | None = None,
    data: TaskData | None = None,
    model_factory: Callable[[TrainConfig, TaskData], nn.Module] | None = None,
    callbacks: Sequence[Callback] = (),
) -> RunResult:
    """Run (or resume) a training run and evaluate its best checkpoint on test.

    Args:
        cfg: the settings; ``None`` fields take the task's recipe defaults.
        resume: continue the run in ``cfg.output_dir`` from ``checkpoints/last.pt``.
        overwrite: replace an earlier run's files in a non-empty ``cfg.output_dir``.
        progress: progress bars (rank 0, and only when stderr is a terminal); never
            changes the numbers.
        explicit: names of the settings the user set explicitly (CLI); when resuming,
            only those are compared with the run's saved settings. ``None``: all.
        data: ready-made datasets (default: built from ``cfg``).
        model_factory: ``(cfg, data) -> model`` (default: the registry's ``cfg.model``).
        callbacks: :class:`~pointea.engine.callbacks.Callback` hooks (after the built-in
            one that draws ``training_curves.png``).

    Returns:
        a :class:`RunResult` (best epoch, best validation metric, test metrics, history).

    Raises:
        InputError / DataError / CheckpointError: bad settings, data or checkpoint.
        TrainingError: folder in use or not empty, a checkpoint could not be written, or
            a non-finite loss (:class:`NonFiniteLossError`).
    """
    hooks = CallbackList([TrainingCurves(), *callbacks])
    cfg = cfg.resolved()
    ctx = setup_distributed(cfg.device)
    run = RunDirectory(cfg.output_dir)
    try:
        with contextlib.ExitStack() as scope:  # process-wide settings of this run
            return _train(
                cfg,
                ctx,
                run,
                resume=resume,
                overwrite=overwrite,
                progress=bars_wanted(progress),
                explicit=explicit,
                data=data,
                model_factory=model_factory or build_model,
                hooks=hooks,
                scope=scope,
            )
    finally:
        run.release()
        cleanup_distributed()


def _train(
    cfg, ctx, run, *, resume, overwrite, progress, explicit, data, model_factory, hooks, scope
):
    cfg, ckpt = _on_rank0_then_all(
        ctx,
        lambda: prepare_run_dir(run, cfg, resume=resume, overwrite=overwrite, explicit=explicit),
    )
    _check_runtime(cfg, ctx)
    scope.enter_context(tf32(cfg.tf32, ctx.device))
    scope.enter_context(deterministic(cfg.deterministic))
    if data is None:  # rank 0 first (it may download / build caches), then the others
        data = _on_rank0_then_all(ctx, lambda: build_task_data(cfg), everywhere=True)
    check_point_count(data, cfg)
    loaders = _build_loaders(cfg, ctx, data)

    state, model = _start_state(cfg, ctx, run, data, model_factory, ckpt)
    plan_sampling(cfg, data, state.model, loader_workers(cfg, ctx.device))
    loss_fn = loss_function(cfg, data.num_classes)
    if ctx.is_main:
        run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        if ckpt is None:
            run.write_json(
                run.config_path, {**cfg.to_dict(), **provenance(ctx.world_size, ctx.device)}
            )
        state.history = [r for r in run.read_metrics() if int(r["epoch"]) <= state.epoch]
        run.rewrite_metrics(state.history)

    eval_kw = dict(
        task=cfg.spec,
        num_classes=data.num_classes,
        class_names=data.class_names,
        category_parts=data.category_parts,
        ctx=ctx,
        autocast=autocast(cfg, ctx.device) if (cfg.amp or cfg.bf16) else None,
        progress=progress,
        chunk_size=cfg.chunk_size,
    )
    hooks.on_train_start(state)
    t_run = time.time()
    optimizer, scheduler = state.optimizer, state.scheduler
    for epoch in range(state.epoch + 1, cfg.epochs + 1):
        t0 = time.time()
        state.epoch = epoch
        loaders.train_set.set_epoch(epoch)
        loaders.sampler.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        hint = (
            f"The last good checkpoint, {run.last_path} (epoch {epoch - 1}), is kept. "
            if epoch > 1
            else ""
        )
        stats = train_one_epoch(
            model,
            loaders.train,
            optimizer,
            loss_fn,
            cfg=cfg,
            ctx=ctx,
            epoch=epoch,
            scaler=state.scaler,
            progress=progress,
            ckpt_hint=hint,
            category_parts=data.category_parts,
            callbacks=hooks,
            state=state,
            seed=derive_seed(cfg.seed, epoch, ctx.rank),
        )
        state.global_step += len(loaders.train)
        scheduler.step()  # after the optimizer steps of the epoch
        if cfg.protocol == "full-train":  # nothing is selected: the last epoch is kept
            val, improved = {}, epoch == cfg.epochs
        else:
            val = evaluate(
                state.model, loaders.val, loss_fn=loss_fn, desc=f"epoch {epoch} val", **eval_kw
            )
            score = val.get(cfg.selection_metric)
            score = -math.inf if score is None else float(score)
            improved = score > state.best_metric
            if improved:
                state.best_metric = score
        if improved:
            state.best_epoch = epoch
        record = {
            "epoch": epoch,
            "train_loss": stats["train_loss"],
            "train_accuracy": stats["train_accuracy"],
            "val_loss": val.get("loss"),
            **{f"val_{k}": v for k, v in val.items() if k not in _PER_CLASS_KEYS},
            "lr": lr,
            "skipped_batches": stats["skipped_batches"],
            "best_epoch": state.best_epoch,
            "time_s": round(time.time() - t0, 3),
        }
        _end_epoch(state, record, improved, hooks, data)

    test_record = _test_best(state, data, loaders.test, eval_kw)
    if ctx.is_main:
        run.write_json(run.test_metrics_path, test_record)
        print(format_summary(cfg, test_record, state.history, run, time.time() - t_run), flush=True)
    hooks.on_train_end(state, test_record)
    return RunResult(run.path, state.best_epoch, state.best_metric, test_record, state.history)


def _on_rank0_then_all(ctx: DistContext, fn: Callable[[], Any], *, everywhere: bool = False):
    """Run ``fn`` on rank 0 and send its result (or its error) to every process; with
    ``everywhere`` the other ranks then run ``fn`` themselves (after rank 0 succeeded)."""
    result, failure = None, None
    if ctx.is_main:
        try:
            result = fn()
        except PointeaError as exc:
            failure = exc
    if everywhere:
        failure = broadcast_object(failure, ctx)  # also the barrier the others wait at
    else:
        result, failure = broadcast_object((result, failure), ctx)
    if failure is not None:
        raise failure
    if everywhere and not ctx.is_main:
        result = fn()
    return result


def _check_runtime(cfg: TrainConfig, ctx: DistContext) -> None:
    if cfg.amp and ctx.device.type != "cuda":
        raise InputError("--amp (float16 mixed precision) needs CUDA; on CPU use --bf16")
    if cfg.batch_size % ctx.world_size:
        raise InputError(
            f"--batch-size {cfg.batch_size} (the global batch) must be divisible by the "
            f"{ctx.world_size} processes"
        )
    synced = ctx.distributed and cfg.sync_bn  # BatchNorm sees the combined batch
    if cfg.batch_size // ctx.world_size < 2 and not synced:
        raise InputError(
            f"--batch-size {cfg.batch_size} over {ctx.world_size} processes leaves fewer than "
            "2 clouds per process; BatchNorm needs at least 2: raise --batch-size or --sync-bn"
        )
    if cfg.optimizer == "adam":
        _log(
            ctx,
            f"warning: Adam at lr {cfg.lr:g} is reported to diverge for PCT; the "
            "published recipe uses SGD (lr 0.01, momentum 0.9)",
            err=True,
        )


def _build_loaders(cfg: TrainConfig, ctx: DistContext, data: TaskData) -> _Loaders:
    """Training loader (shuffled per epoch, sharded) and sharded evaluation loaders."""
    from torch.utils.data.distributed import DistributedSampler

    workers = loader_workers(cfg, ctx.device)
    local_batch = cfg.batch_size // ctx.world_size
    train_set = EpochSeededDataset(data.train, cfg.seed)
    sampler = DistributedSampler(
        train_set,
        num_replicas=ctx.world_size,
        rank=ctx.rank,
        shuffle=True,
        seed=cfg.seed,
        drop_last=False,
    )
    # full batches only (a 1-cloud batch breaks BatchNorm), unless the set is that small
    per_process = len(data.train) // ctx.world_size
    if len(data.train) < 2:
        raise InputError(
            f"the training split has {len(data.train)} cloud(s); BatchNorm needs at least 2 "
            "per batch"
        )
    drop_last = per_process >= local_batch
    train_loader = make_loader(
        train_set,
        batch_size=local_batch,
        sampler=sampler,
        workers=workers,
        device=ctx.device,
        drop_last=drop_last,
    )
    if len(train_loader) == 0:
        raise InputError(
            f"the training split ({len(data.train)} clouds) gives no full batch of "
            f"{local_batch} per process; lower --batch-size"
        )
    eval_batch = max(1, cfg.spec.eval_batch_size(cfg) // ctx.world_size)

    def eval_loader(ds):
        # evaluation transforms may draw too (random subsets): fixed streams, epoch 0
        return make_loader(
            EpochSeededDataset(ds, cfg.seed),
            batch_size=eval_batch,
            workers=workers,
            device=ctx.device,
            sampler=ShardSampler(len(ds), ctx.rank, ctx.world_size),
        )

    return _Loaders(train_loader, sampler, eval_loader(data.val), eval_loader(data.test), train_set)


def _start_state(cfg, ctx, run, data, model_factory, ckpt) -> tuple[TrainState, nn.Module]:
    """Model, optimiser, schedule and counters, restored from ``ckpt`` when resuming;
    returns the state and the model to train (DDP-wrapped when distributed)."""
    seed_everything(cfg.seed)
    core = model_factory(cfg, data)
    model_name = getattr(core, "name", cfg.model)
    model_config = dict(getattr(core, "hparams", {}))
    core.to(ctx.device)
    if ctx.distributed and cfg.sync_bn:
        core = convert_batchnorm(core, ctx.device)
    model = core
    if ctx.distributed:
        model = nn.parallel.DistributedDataParallel(
            core, device_ids=[ctx.device] if ctx.device.type == "cuda" else None
        )
    optimizer = build_optimizer(cfg, core)
    scheduler = build_scheduler(cfg, optimizer)
    scaler = torch.amp.GradScaler("cuda") if cfg.amp else None
    start = restore_training_state(
        ckpt,
        run.last_path,
        model=core,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        task=cfg.task,
        model_name=model_name,
        model_config=model_config,
        restore_rng=ctx.rank == 0,
    )
    if ckpt is not None:
        _log(ctx, f"resuming {run.path} after epoch {start.epoch}/{cfg.epochs}")
    state = TrainState(
        cfg,
        ctx,
        run,
        core,
        optimizer,
        scheduler,
        scaler=scaler,
        model_name=model_name,
        model_config=model_config,
        epoch=start.epoch,
        global_step=start.global_step,
        best_metric=start.best_metric,
        best_epoch=start.best_epoch,
    )
    return state, model


def _end_epoch(state, record, improved, hooks, data):
    """Checkpoints (best before last), metrics line, hooks; every rank stops together."""
    ctx, run, cfg = state.ctx, state.run, state.cfg
    failure: PointeaError | None = None
    if ctx.is_main:
        state.history.append(record)
        ckpt = assemble_checkpoint(
            task=cfg.task,
            kind=cfg.kind,
            model_name=state.model_name,
            model_config=state.model_config,
            model=state.model,
            optimizer=state.optimizer,
            scheduler=state.scheduler,
            scaler=state.scaler,
            epoch=state.epoch,
            global_step=state.global_step,
            config=cfg.to_dict(),
            class_names=data.class_names,
            best_metric=state.best_metric,
            best_epoch=state.best_epoch,
            metrics=record,
        )
        written = []
        try:
            if improved:
                written.append(save_checkpoint(ckpt, run.best_path))
            written.append(save_checkpoint(ckpt, run.last_path))
        except PointeaError as exc:
            failure = exc
        if failure is None:
            hooks.on_checkpoint(state, written)
            run.append_metrics(record)
            _log(ctx, format_epoch_line(record, cfg.epochs, cfg.selection_metric, improved))
    failure = broadcast_object(failure, ctx)
    if failure is not None:
        raise failure
    hooks.on_epoch_end(state, record)


def _test_best(state: TrainState, data: TaskData, test_loader, eval_kw) -> dict[str, Any]:
    """Load ``best.pt`` into the model and evaluate it on the test split."""
    ctx, run, cfg = state.ctx, state.run, state.cfg
    best_state, failure = None, None
    best_epoch, best_metric = state.best_epoch, state.best_metric
    if ctx.is_main:
        try:
            if not run.best_path.exists():
                raise TrainingError(f"{run.best_path} is missing: no epoch reached a best score")
            best = load_checkpoint(run.best_path)
            best_state, best_epoch = best["model"], int(best["epoch"])
            best_metric = float(best.get("best_metric", best_metric))
        except PointeaError as exc:
            failure = exc
    best_state, best_epoch, best_metric, failure = broadcast_object(
        (best_state, best_epoch, best_metric, failure), ctx
    )
    if failure is not None:
        raise failure
    state.best_epoch, state.best_metric = best_epoch, best_metric
    load_model_state(state.model, best_state, run.best_path)
    test = evaluate(state.model, test_loader, desc="test", block_vote=cfg.block_vote, **eval_kw)
    test.update(cfg.spec.test_extras(data))
    return {
        "task": cfg.task,
        "split": "test",
        "protocol": cfg.protocol,
        "checkpoint": "checkpoints/best.pt",
        "epoch": best_epoch,
        "selected_on": data.val_split,
        f"val_{cfg.selection_metric}": best_metric if math.isfinite(best_metric) else None,
        **test,
    }


def _log(ctx: DistContext, msg: str, *, err: bool = False) -> None:
    if ctx.is_main:
        print(msg, file=sys.stderr if err else sys.stdout, flush=True)
