"""Training and evaluation loops: one run from a :class:`TrainConfig` to its test numbers.

:func:`train` does, in order: join the process group under ``torchrun``, lock and check
the run folder, build the datasets / model / optimizer / schedule, restore a checkpoint
when resuming, then for each epoch train, validate, and write ``metrics.jsonl``,
``checkpoints/best.pt`` (best on validation, never on test) and ``checkpoints/last.pt``;
finally it evaluates ``best.pt`` on the test split and writes ``test_metrics.json``.

Reproducibility: every source of randomness is re-seeded from ``(seed, epoch)`` at the
start of each epoch (shuffling, dropout) and from ``(seed, epoch, sample index)`` for
each sample's augmentation, so an epoch's random stream never depends on history, on
the number of data-loader workers or on the number of processes. A run stopped after
epoch k and resumed therefore ends with the same parameters and metrics as an
uninterrupted run (CPU, fixed seed). Checkpoints are written after each epoch, best.pt
before last.pt, so last.pt never claims a best epoch that is not on disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import platform
import random
import sys
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from .. import __version__
from ..errors import CheckpointError, InputError, PointeaError, TrainingError
from ..metrics import ClassificationMeter, SegmentationMeter, predict_parts
from .checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    capture_rng_state,
    check_checkpoint_matches,
    load_checkpoint,
    load_model_state,
    restore_rng_state,
    save_checkpoint,
    unwrap_model,
)
from .config import TrainConfig, read_saved_config
from .distributed import (
    DistContext,
    ShardSampler,
    all_reduce_sum,
    broadcast_object,
    cleanup_distributed,
    convert_batchnorm,
    setup_distributed,
)
from .rundir import RunDirectory

__all__ = [
    "NonFiniteLossError",
    "RunResult",
    "TaskData",
    "build_model",
    "build_split",
    "build_task_data",
    "derive_seed",
    "evaluate",
    "loss_function",
    "train",
]

#: settings a resumed run may change (they do not alter the numbers)
RESUME_OVERRIDABLE = frozenset({"device", "workers", "data_root", "download", "output_dir"})


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite (the run stops; the last good checkpoint stays)."""


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


@dataclass
class RunResult:
    """What :func:`train` returns (on every process; files only on rank 0)."""

    output_dir: Path
    best_epoch: int
    best_metric: float
    test_metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------
# seeding
# ---------------------------------------------------------------------------------------
def derive_seed(*parts: int) -> int:
    """A 32-bit seed from integers, well mixed (``numpy.random.SeedSequence``)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


@contextlib.contextmanager
def _isolated_rng(seed: int) -> Iterator[None]:
    """Run a block with all RNGs seeded by ``seed``, restoring the outer states after."""
    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


class EpochSeededDataset(Dataset):
    """Wraps a dataset so that sample ``i`` of epoch ``e`` is augmented with a random
    stream seeded by ``(seed, e, i)``: the same on any number of workers or processes."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        with _isolated_rng(derive_seed(self.seed, self.epoch, index, 17)):
            return self.dataset[index]

    def __repr__(self) -> str:
        return f"EpochSeededDataset({self.dataset!r}, seed={self.seed}, epoch={self.epoch})"


# ---------------------------------------------------------------------------------------
# data and model
# ---------------------------------------------------------------------------------------
def _data_root(cfg: TrainConfig) -> Path:
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
    PCT's per-axis scale + shift and, when ``point_dropout`` > 0, random point dropout.
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
    root = Path(root) if root is not None else _data_root(cfg)
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


def build_task_data(cfg: TrainConfig, root: str | Path | None = None) -> TaskData:
    """The train / val / test datasets of ``cfg.task`` with their transforms."""
    root = Path(root) if root is not None else _data_root(cfg)
    tr, va, te = (build_split(cfg, s, root) for s in ("train", "val", "test"))
    if cfg.kind == "classification":
        return TaskData(
            tr,
            va,
            te,
            tr.num_classes,
            list(tr.class_names),
            None,
            f"val ({cfg.val_fraction:.0%} of train, split seed {cfg.split_seed})",
        )
    return TaskData(
        tr,
        va,
        te,
        tr.num_classes,
        list(tr.categories),
        [list(p) for p in tr.category_parts],
        "val (ShapeNetPart's own)",
    )


def build_model(cfg: TrainConfig, data: TaskData) -> nn.Module:
    """Create the registry model ``cfg.model`` sized for ``data``."""
    from ..models import create_model

    kwargs: dict[str, Any] = {
        "attention": cfg.attention,
        "in_channels": 6 if cfg.use_normals else 3,
    }
    if cfg.memory_units is not None:
        kwargs["memory_units"] = cfg.memory_units
    if cfg.dropout is not None:
        kwargs["dropout"] = cfg.dropout
    if cfg.kind == "classification":
        kwargs["num_classes"] = data.num_classes
    else:
        kwargs["num_parts"] = data.num_classes
        kwargs["num_categories"] = len(data.category_parts or [])
    return create_model(cfg.model, **kwargs)


def loss_function(cfg: TrainConfig, num_classes: int) -> Callable[[Tensor, Tensor], Tensor]:
    """Cross-entropy; classification uses the reference's label smoothing (true class
    ``1 - eps``, every other class ``eps / (K - 1)``), i.e. torch's ``label_smoothing``
    of ``eps * K / (K - 1)``."""
    eps = float(cfg.label_smoothing or 0.0)
    torch_eps = min(eps * num_classes / (num_classes - 1), 1.0) if num_classes > 1 else 0.0

    def loss(logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), target, label_smoothing=torch_eps)

    return loss


def _forward(model: nn.Module, batch: Any, kind: str) -> Tensor:
    x = getattr(batch, "x", None)
    if kind == "classification":
        return model(batch.pos, batch.batch, x)
    return model(batch.pos, batch.category.view(-1), batch.batch, x)


def autocast(cfg: TrainConfig, device: torch.device):
    if cfg.amp:
        return torch.autocast(device_type=device.type, dtype=torch.float16)
    if cfg.bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _progress(iterable, *, enabled: bool, desc: str, total: int | None = None):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(
        iterable,
        desc=desc,
        total=total,
        leave=False,
        dynamic_ncols=True,
        mininterval=0.5,
        file=sys.stderr,
    )


# ---------------------------------------------------------------------------------------
# one epoch
# ---------------------------------------------------------------------------------------
def train_one_epoch(
    model: nn.Module,
    loader: Any,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    *,
    cfg: TrainConfig,
    ctx: DistContext,
    epoch: int,
    scaler: Any = None,
    progress: bool = False,
    ckpt_hint: str = "",
    category_parts: Sequence[Sequence[int]] | None = None,
) -> dict[str, float]:
    """Train ``model`` for one pass over ``loader``; returns summed-over-ranks statistics.

    The running accuracy is the classification accuracy, or for segmentation the point
    accuracy with predictions restricted to each shape's category parts.

    Raises:
        NonFiniteLossError: the loss was NaN/inf (unless ``cfg.skip_nonfinite``).
    """
    model.train()
    kind = cfg.kind
    totals = torch.zeros(4, dtype=torch.float64)  # loss*n, correct, n (targets), skipped
    steps = len(loader)
    bar = _progress(
        loader,
        enabled=progress and ctx.is_main,
        desc=f"epoch {epoch}/{cfg.epochs} train",
        total=steps,
    )
    for step, batch in enumerate(bar, start=1):
        batch = batch.to(ctx.device, non_blocking=True)
        target = batch.y.view(-1)
        with autocast(cfg, ctx.device):
            logits = _forward(model, batch, kind)
        loss = loss_fn(logits, target)
        finite = torch.isfinite(loss.detach()).to(torch.float64).cpu().view(1)
        if ctx.distributed:  # every rank must take the same decision
            finite = all_reduce_sum(finite, ctx) / ctx.world_size
        if float(finite) < 1.0:
            optimizer.zero_grad(set_to_none=True)
            if cfg.skip_nonfinite:
                totals[3] += 1
                continue
            raise NonFiniteLossError(
                f"non-finite training loss ({float(loss.detach()):.4g}) at epoch {epoch}, step "
                f"{step}/{steps}; stopped. {ckpt_hint}Try a lower --lr, --grad-clip, or "
                "--skip-nonfinite to skip such batches"
            )
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            if cfg.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
        with torch.no_grad():
            n = target.numel()
            if kind == "segmentation" and category_parts is not None:
                pred = predict_parts(
                    logits.detach(), batch.category.view(-1), category_parts, batch.batch
                )
            else:
                pred = logits.detach().argmax(-1)
            correct = float((pred == target).sum())
            totals[0] += float(loss.detach()) * n
            totals[1] += correct
            totals[2] += n
        if bar is not loader:
            bar.set_postfix(
                loss=f"{totals[0] / totals[2]:.4f}",
                acc=f"{100 * totals[1] / totals[2]:.1f}%",
                refresh=False,
            )
    totals = all_reduce_sum(totals, ctx)
    n = max(float(totals[2]), 1.0)
    return {
        "train_loss": float(totals[0]) / n,
        "train_accuracy": float(totals[1]) / n,
        "skipped_batches": int(totals[3]),
    }


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Any,
    *,
    kind: str,
    num_classes: int,
    class_names: Sequence[str] | None = None,
    category_parts: Sequence[Sequence[int]] | None = None,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    ctx: DistContext | None = None,
    votes: int = 1,
    vote_seed: int = 0,
    autocast: Any = None,
    progress: bool = False,
    desc: str = "eval",
) -> dict[str, Any]:
    """Evaluate ``model`` on ``loader`` (this process's shard); metrics summed over ranks.

    With ``votes > 1`` the logits of the plain pass and ``votes - 1`` passes with random
    per-axis scaling U[0.8, 1.25] of each cloud are averaged (test-time voting); the
    voting draws are seeded by ``vote_seed`` and repeatable.

    Returns:
        classification: ``overall_accuracy``, ``mean_class_accuracy``,
        ``per_class_accuracy``, ``num_samples`` (+ ``loss``);
        segmentation: ``instance_miou``, ``class_miou``, ``per_category_iou``,
        ``point_accuracy``, ``num_shapes`` (+ ``loss``).
    """
    ctx = ctx or DistContext(device=next(model.parameters()).device)
    model.eval()
    if kind == "classification":
        meter: Any = ClassificationMeter(num_classes, class_names)
    else:
        if category_parts is None:
            raise InputError("evaluate: segmentation needs category_parts")
        meter = SegmentationMeter(category_parts, class_names)
    loss_sum = torch.zeros(2, dtype=torch.float64)
    gen = torch.Generator().manual_seed(vote_seed)
    bar = _progress(loader, enabled=progress and ctx.is_main, desc=desc)
    for batch in bar:
        batch = batch.to(ctx.device)
        target = batch.y.view(-1)
        logits = None
        for v in range(max(votes, 1)):
            view = batch
            if v > 0:
                num = int(batch.batch.max()) + 1 if batch.pos.numel() else 0
                scale = torch.empty(num, 3).uniform_(0.8, 1.25, generator=gen).to(ctx.device)
                view = batch.clone()
                view.pos = batch.pos * scale[batch.batch]
            with autocast or contextlib.nullcontext():
                out = _forward(model, view, kind).float()
            logits = out if logits is None else logits + out
        logits = logits / max(votes, 1)
        if loss_fn is not None:
            loss_sum[0] += float(loss_fn(logits, target)) * target.numel()
            loss_sum[1] += target.numel()
        if kind == "classification":
            meter.update(logits, target)
        else:
            meter.update(logits, target, batch.category.view(-1), batch.batch)
    state = all_reduce_sum(meter.state(), ctx)
    meter.load_state(state)
    out = meter.compute()
    if loss_fn is not None:
        loss_sum = all_reduce_sum(loss_sum, ctx)
        out["loss"] = float(loss_sum[0] / loss_sum[1]) if loss_sum[1] > 0 else None
    return out


# ---------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------
def _versions(ctx: DistContext) -> dict[str, Any]:
    import torch_geometric

    return {
        "pointea_version": __version__,
        "torch_version": str(torch.__version__),
        "torch_geometric_version": torch_geometric.__version__,
        "python_version": platform.python_version(),
        "world_size": ctx.world_size,
        "resolved_device": str(ctx.device),
    }


def _merge_resumed(
    saved: TrainConfig, given: TrainConfig, explicit: Collection[str] | None, source: str
) -> TrainConfig:
    """The saved settings, with the allowed overrides of ``given`` applied."""
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
    return merged


def _prepare_run_dir(
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
            return _merge_resumed(saved, cfg, explicit, str(run.path)), ckpt
        if run.config_path.exists():  # killed before its first checkpoint: start over
            import json

            try:
                data = json.loads(run.config_path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise CheckpointError(f"{run.config_path}: unreadable ({exc})") from exc
            saved = read_saved_config(data, str(run.config_path))
            return _merge_resumed(saved, cfg, explicit, str(run.path)), None
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


def _check_runtime(cfg: TrainConfig, ctx: DistContext) -> None:
    if cfg.amp and ctx.device.type != "cuda":
        raise InputError("--amp (float16 mixed precision) needs CUDA; on CPU use --bf16")
    if cfg.batch_size % ctx.world_size:
        raise InputError(
            f"--batch-size {cfg.batch_size} (the global batch) must be divisible by the "
            f"{ctx.world_size} processes"
        )


def make_loader(dataset, *, batch_size, sampler, workers, device, drop_last=False):
    from torch_geometric.loader import DataLoader

    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=workers,
        drop_last=drop_last,
        pin_memory=device.type == "cuda",
    )


def _check_point_count(data: TaskData, cfg: TrainConfig) -> None:
    if len(data.train) == 0:
        raise InputError("the training split is empty")
    sample = data.train[0]
    if sample.pos.size(0) != cfg.num_points:
        raise InputError(
            f"--num-points {cfg.num_points}: the training clouds come out with "
            f"{sample.pos.size(0)} points"
        )


def _log(ctx: DistContext, msg: str, *, err: bool = False) -> None:
    if ctx.is_main:
        print(msg, file=sys.stderr if err else sys.stdout, flush=True)


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    explicit: Collection[str] | None = None,
    data: TaskData | None = None,
    model_factory: Callable[[TrainConfig, TaskData], nn.Module] | None = None,
) -> RunResult:
    """Run (or resume) a training run and evaluate its best checkpoint on test.

    Args:
        cfg: the settings; ``None`` fields take the task's recipe defaults.
        resume: continue the run in ``cfg.output_dir`` from ``checkpoints/last.pt``.
        overwrite: replace an earlier run's files in a non-empty ``cfg.output_dir``.
        progress: show progress bars (rank 0 only).
        explicit: names of the settings the user set explicitly (CLI); when resuming,
            only those are compared with the run's saved settings. ``None``: all.
        data: ready-made datasets (default: built from ``cfg``).
        model_factory: ``(cfg, data) -> model`` (default: the registry's ``cfg.model``).

    Returns:
        a :class:`RunResult` (best epoch, best validation metric, test metrics, history).

    Raises:
        InputError / DataError / CheckpointError: bad settings, data or checkpoint.
        TrainingError: folder in use or not empty, a checkpoint could not be written, or
            a non-finite loss (:class:`NonFiniteLossError`).
    """
    ctx = setup_distributed(cfg.device)
    run = RunDirectory(cfg.output_dir)
    try:
        return _train(
            cfg,
            ctx,
            run,
            resume=resume,
            overwrite=overwrite,
            progress=progress,
            explicit=explicit,
            data=data,
            model_factory=model_factory,
        )
    finally:
        run.release()
        cleanup_distributed()


def _train(cfg, ctx, run, *, resume, overwrite, progress, explicit, data, model_factory):
    cfg = cfg.resolved()
    # rank 0 owns the folder; the others learn its verdict (and the settings) from it
    verdict: dict[str, Any] = {}
    if ctx.is_main:
        try:
            cfg, ckpt = _prepare_run_dir(
                run, cfg, resume=resume, overwrite=overwrite, explicit=explicit
            )
            verdict = {"config": cfg.to_dict(), "checkpoint": ckpt}
        except PointeaError as exc:
            verdict = {"error": exc}
    verdict = broadcast_object(verdict, ctx)
    if "error" in verdict:
        raise verdict["error"]
    cfg = TrainConfig.from_dict(verdict["config"]).resolved()
    ckpt = verdict["checkpoint"]
    _check_runtime(cfg, ctx)
    if cfg.optimizer == "adam":
        _log(
            ctx,
            f"warning: Adam at lr {cfg.lr:g} is reported to diverge for PCT; the "
            "published recipe uses SGD (lr 0.01, momentum 0.9)",
            err=True,
        )

    # data: rank 0 first (it may download / build caches), then the others
    if data is None:
        failure = None
        if ctx.is_main:
            try:
                data = build_task_data(cfg)
            except PointeaError as exc:
                failure = exc
        failure = broadcast_object(failure, ctx)  # also the barrier the others wait at
        if failure is not None:
            raise failure
        if not ctx.is_main:
            data = build_task_data(cfg)
    _check_point_count(data, cfg)
    workers = cfg.workers if cfg.workers is not None else (4 if ctx.device.type == "cuda" else 0)
    local_batch = cfg.batch_size // ctx.world_size
    train_set = EpochSeededDataset(data.train, cfg.seed)
    # evaluation transforms may draw too (random subsets): fixed streams, epoch 0
    val_set = EpochSeededDataset(data.val, cfg.seed)
    test_set = EpochSeededDataset(data.test, cfg.seed)
    from torch.utils.data.distributed import DistributedSampler

    sampler = DistributedSampler(
        train_set,
        num_replicas=ctx.world_size,
        rank=ctx.rank,
        shuffle=True,
        seed=cfg.seed,
        drop_last=False,
    )
    # full batches only (a 1-cloud batch breaks BatchNorm), unless the set is that small
    drop_last = len(data.train) // ctx.world_size >= local_batch
    train_loader = make_loader(
        train_set,
        batch_size=local_batch,
        sampler=sampler,
        workers=workers,
        device=ctx.device,
        drop_last=drop_last,
    )
    eval_batch = max(1, cfg.eval_batch_size // ctx.world_size)

    def eval_loader(ds):
        return make_loader(
            ds,
            batch_size=eval_batch,
            workers=workers,
            device=ctx.device,
            sampler=ShardSampler(len(ds), ctx.rank, ctx.world_size),
        )

    val_loader, test_loader = eval_loader(val_set), eval_loader(test_set)
    if len(train_loader) == 0:
        raise InputError(
            f"the training split ({len(data.train)} clouds) gives no full batch of "
            f"{local_batch} per process; lower --batch-size"
        )

    # model, optimiser, schedule
    seed_everything(cfg.seed)
    model = (model_factory or build_model)(cfg, data)
    model_name = getattr(model, "name", cfg.model)
    model_config = dict(getattr(model, "hparams", {}))
    model.to(ctx.device)
    if ctx.distributed and cfg.sync_bn:
        model = convert_batchnorm(model, ctx.device)
    core = model
    if ctx.distributed:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[ctx.device] if ctx.device.type == "cuda" else None
        )
    if cfg.optimizer == "sgd":
        optimizer = torch.optim.SGD(
            core.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    else:
        optimizer = torch.optim.Adam(core.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=cfg.epochs, eta_min=cfg.min_lr
    )
    scaler = torch.amp.GradScaler("cuda") if cfg.amp else None
    loss_fn = loss_function(cfg, data.num_classes)
    metric_key = cfg.selection_metric

    start_epoch, global_step = 0, 0
    best_metric, best_epoch = -math.inf, 0
    history: list[dict[str, Any]] = []
    if ckpt is not None:
        check_checkpoint_matches(
            ckpt,
            run.last_path,
            task=cfg.kind,
            model_name=model_name,
            model_config=model_config or None,
        )
        load_model_state(core, ckpt["model"], run.last_path)
        try:
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            if scaler is not None and ckpt.get("scaler"):
                scaler.load_state_dict(ckpt["scaler"])
        except (KeyError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"{run.last_path}: optimizer / scheduler state does not fit: {exc}"
            ) from exc
        if ctx.rank == 0 and "rng" in ckpt:
            restore_rng_state(ckpt["rng"])
        start_epoch = int(ckpt["epoch"])
        global_step = int(ckpt.get("global_step", 0))
        best_metric = float(ckpt.get("best_metric", -math.inf))
        best_epoch = int(ckpt.get("best_epoch", 0))
        _log(ctx, f"resuming {run.path} after epoch {start_epoch}/{cfg.epochs}")

    if ctx.is_main:
        run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        if ckpt is None:
            run.write_json(run.config_path, {**cfg.to_dict(), **_versions(ctx)})
        history = [r for r in run.read_metrics() if int(r["epoch"]) <= start_epoch]
        run.rewrite_metrics(history)

    def make_checkpoint(epoch: int, metrics: dict[str, Any]) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "task": cfg.kind,
            "model_name": model_name,
            "model_config": model_config,
            "model": {k: v.detach().cpu() for k, v in unwrap_model(core).state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "epoch": epoch,
            "global_step": global_step,
            "rng": capture_rng_state(),
            "config": cfg.to_dict(),
            "class_names": list(data.class_names),
            "best_metric": best_metric,
            "best_epoch": best_epoch,
            "metrics": metrics,
            "pointea_version": __version__,
            "torch_version": str(torch.__version__),
        }

    amp_context = autocast(cfg, ctx.device) if (cfg.amp or cfg.bf16) else None
    eval_kw = dict(
        kind=cfg.kind,
        num_classes=data.num_classes,
        class_names=data.class_names,
        category_parts=data.category_parts,
        ctx=ctx,
        autocast=amp_context,
        progress=progress,
    )
    t_run = time.time()
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        t0 = time.time()
        seed_everything(derive_seed(cfg.seed, epoch, ctx.rank))
        train_set.set_epoch(epoch)
        sampler.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        hint = (
            f"The last good checkpoint, {run.last_path} (epoch {epoch - 1}), is kept. "
            if epoch > 1
            else ""
        )
        stats = train_one_epoch(
            model,
            train_loader,
            optimizer,
            loss_fn,
            cfg=cfg,
            ctx=ctx,
            epoch=epoch,
            scaler=scaler,
            progress=progress,
            ckpt_hint=hint,
            category_parts=data.category_parts,
        )
        global_step += len(train_loader)
        scheduler.step()  # after the optimizer steps of the epoch
        val = evaluate(core, val_loader, loss_fn=loss_fn, desc=f"epoch {epoch} val", **eval_kw)
        score = val.get(metric_key)
        score = -math.inf if score is None else float(score)
        improved = score > best_metric
        if improved:
            best_metric, best_epoch = score, epoch
        record = {
            "epoch": epoch,
            "train_loss": stats["train_loss"],
            "train_accuracy": stats["train_accuracy"],
            "val_loss": val.get("loss"),
            **{
                f"val_{k}": v
                for k, v in val.items()
                if k not in ("loss", "per_class_accuracy", "per_category_iou")
            },
            "lr": lr,
            "skipped_batches": stats["skipped_batches"],
            "best_epoch": best_epoch,
            "time_s": round(time.time() - t0, 3),
        }
        failure: PointeaError | None = None
        if ctx.is_main:
            history.append(record)
            ckpt_now = make_checkpoint(epoch, record)
            try:
                if improved:
                    save_checkpoint(ckpt_now, run.best_path)
                save_checkpoint(ckpt_now, run.last_path)
            except PointeaError as exc:
                failure = exc
            if failure is None:
                run.append_metrics(record)
                _plot(run, history, cfg)
                _log(ctx, _epoch_line(record, cfg, metric_key, improved))
        failure = broadcast_object(failure, ctx)  # every rank stops together
        if failure is not None:
            raise failure

    # final: best.pt on the test split
    best_state, failure = None, None
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
    load_model_state(core, best_state, run.best_path)
    test = evaluate(core, test_loader, desc="test", **eval_kw)
    test_record = {
        "task": cfg.task,
        "split": "test",
        "checkpoint": "checkpoints/best.pt",
        "epoch": best_epoch,
        "selected_on": data.val_split,
        f"val_{metric_key}": best_metric,
        **test,
    }
    if ctx.is_main:
        run.write_json(run.test_metrics_path, test_record)
        from .report import format_summary

        print(format_summary(cfg, test_record, history, run, time.time() - t_run), flush=True)
    return RunResult(run.path, best_epoch, best_metric, test_record, history)


def _plot(run: RunDirectory, history: list[dict[str, Any]], cfg: TrainConfig) -> None:
    from .plots import plot_training_curves

    try:
        plot_training_curves(
            history,
            run.curves_path,
            f"val_{cfg.selection_metric}",
            title=f"{cfg.task} / {cfg.model} / {cfg.attention} attention",
        )
    except OSError as exc:  # a figure is not worth stopping a run for
        print(f"warning: could not write {run.curves_path}: {exc}", file=sys.stderr)


def _epoch_line(rec: dict[str, Any], cfg: TrainConfig, metric: str, improved: bool) -> str:
    val = rec.get(f"val_{metric}")
    val_txt = f"{100 * val:.2f}%" if isinstance(val, float) else "n/a"
    return (
        f"epoch {rec['epoch']:>3}/{cfg.epochs}  train loss {rec['train_loss']:.4f}  "
        f"train acc {100 * rec['train_accuracy']:.1f}%  val {metric} {val_txt}"
        f"{' *' if improved else ''}  lr {rec['lr']:.2e}  {rec['time_s']:.1f}s"
    )
