"""Scores of a saved model on a dataset split.

:func:`evaluate_checkpoint` (``pointea-eval``) loads a checkpoint, rebuilds the split its
task and training config describe, and runs the task's evaluation, with test-time
voting where the task allows it.

:func:`evaluate_all_points` scores a part segmenter on every point of each shape, not a
sampled subset. The usual protocol scores a fixed number of sampled points per shape
(2048). Here each shape's full point set, as the dataset reader returns it before the
sampling transform, goes through the model at once, or chunk by chunk for large shapes
(:meth:`~pointea.inference.Predictor.logits` streams external-attention models), and
every point is compared with its true part.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..engine.config import TrainConfig, read_saved_config
from ..engine.distributed import DistContext, resolve_device
from ..errors import CheckpointError, InputError
from ..metrics import SegmentationMeter, predict_parts
from ..tasks import TASKS, get_task, task_of_kind
from ..transforms import SubsamplePoints
from .predictor import PredictionWarning, Predictor

__all__ = ["evaluate_all_points", "evaluate_checkpoint", "without_sampling"]


def evaluate_checkpoint(
    checkpoint: str | Path,
    *,
    split: str = "test",
    task: str | None = None,
    votes: int = 1,
    overrides: dict[str, Any] | None = None,
    batch_size: int = 32,
    device: str = "auto",
    workers: int = 0,
    seed: int = 0,
    progress: bool = False,
    all_points: bool = False,
) -> dict[str, Any]:
    """Load ``checkpoint`` and compute its metrics on ``split``.

    Args:
        checkpoint: training checkpoint, run folder (its ``best.pt``), pretrained folder
            or PCT_Pytorch file.
        split: dataset split.
        task: expected task name (``modelnet40``, ...); a checkpoint of another task is a
            :class:`~pointea.errors.CheckpointError`. A checkpoint without a recorded
            task is evaluated on ``task`` when its kind fits.
        votes: voting passes (1: none; only where the task allows voting).
        overrides: dataset settings replacing the checkpoint's (``data_root``,
            ``data_format``, ``synthetic``, ``download``, ``num_points``).
        batch_size / device / workers / seed / progress: evaluation settings.
        all_points: score every point of each shape (tasks with
            :attr:`~pointea.tasks.Task.all_points`; :func:`evaluate_all_points`) instead
            of the sampled ones.

    Returns:
        the metrics dict (plus ``task``, ``kind``, ``split``, ``checkpoint``, ``votes``,
        ``epoch``, ``points``).
    """
    from ..engine.trainer import build_split
    from ..models import load_model

    if votes < 1:
        raise InputError(f"--votes must be >= 1, got {votes}")
    if batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {batch_size}")
    if all_points and votes > 1:
        raise InputError("--all-points scores each shape once; drop --votes")
    checkpoint = _run_checkpoint(Path(checkpoint))
    model, info = load_model(checkpoint)
    cfg = _saved_config(checkpoint, info, task, overrides)
    if cfg.num_points is None and info.get("num_points"):
        cfg.num_points = int(info["num_points"])
    cfg.model = getattr(model, "name", cfg.model)
    cfg.epochs = max(cfg.epochs or 1, 1)
    cfg = cfg.resolved()
    spec = cfg.spec
    problems = []
    if votes > 1 and not spec.votes:
        problems.append(f"--votes: task {spec.name} is scored exactly, without voting")
    if all_points and not spec.all_points:
        problems.append(f"--all-points: task {spec.name} does not score every point")
    if problems:
        raise CheckpointError(f"{checkpoint}: does not match: " + "; ".join(problems))

    dataset = build_split(cfg, split, train=False)
    num_classes, names, category_parts = spec.split_labels(dataset)
    model_classes = (getattr(model, "hparams", {}) or {}).get(f"num_{spec.labels}")
    if model_classes is not None and int(model_classes) != num_classes:
        raise CheckpointError(
            f"{checkpoint}: the model predicts {model_classes} {spec.labels} but the "
            f"{cfg.task} {split} split at {cfg.data_root or 'data'} has {num_classes}"
        )
    saved_names = info.get("class_names")
    if spec.labels == "classes" and saved_names and list(saved_names) != names:
        warnings.warn(
            f"{checkpoint}: the dataset's class names differ from the checkpoint's",
            PredictionWarning,
            stacklevel=2,
        )
    dev = resolve_device(device)
    model.to(dev).eval()
    record = {
        "task": cfg.task,
        "kind": spec.kind,
        "split": split,
        "checkpoint": str(checkpoint),
        "votes": votes,
        "epoch": info.get("epoch"),
    }
    if all_points:
        predictor = Predictor(model, num_points=None, device=dev)
        result = evaluate_all_points(predictor, dataset, category_names=names, progress=progress)
        return {**record, **result}
    labels = (num_classes, names, category_parts)
    result = _score(
        model,
        dataset,
        split,
        cfg,
        labels,
        batch_size=batch_size,
        workers=workers,
        device=dev,
        votes=votes,
        seed=seed,
        progress=progress,
    )
    scenes = {"points": "all", "points_scored": result.get("num_points")}
    return {
        **record,
        **(scenes if cfg.spec.whole_scenes else {"points": cfg.num_points}),
        **result,
    }


def _score(
    model, dataset, split, cfg, labels, *, batch_size, workers, device, votes, seed, progress
):
    """The task's evaluation of ``dataset`` (and with ``votes`` > 1 the voted one, the
    plain numbers kept under ``no_voting``)."""
    from ..engine.trainer import EpochSeededDataset, autocast, evaluate, make_loader

    spec = cfg.spec
    num_classes, names, category_parts = labels
    dev = device
    loader = make_loader(
        EpochSeededDataset(dataset, cfg.seed),
        batch_size=spec.eval_batch_size(dataclasses.replace(cfg, eval_batch_size=batch_size)),
        sampler=None,
        workers=workers,
        device=dev,
    )
    kw = dict(
        task=spec,
        num_classes=num_classes,
        class_names=names,
        category_parts=category_parts,
        autocast=autocast(cfg, dev) if cfg.bf16 else None,
        ctx=DistContext(device=dev),
        progress=progress,
    )
    with torch.no_grad():
        result = evaluate(model, loader, desc=f"{split}", **kw)
        if votes > 1:
            single = result
            result = evaluate(
                model, loader, votes=votes, vote_seed=seed, desc=f"{split} x{votes} votes", **kw
            )
            result["no_voting"] = single
    return result


def _run_checkpoint(path: Path) -> Path:
    """A run folder stands for its selected model, ``checkpoints/best.pt``."""
    best = path / "checkpoints" / "best.pt"
    if path.is_dir() and best.is_file() and not (path / "model.safetensors").exists():
        return best
    return path


def _saved_config(
    checkpoint: Path, info: dict[str, Any], task: str | None, overrides: dict[str, Any] | None
) -> TrainConfig:
    """The training config of a loaded checkpoint with ``overrides`` applied; a model
    without one gets ``task`` (or the first task of its kind) at its recipe."""
    kind = info.get("kind")
    saved = dict(info.get("config") or {})
    try:
        if saved:
            cfg = read_saved_config(saved, source=f"{checkpoint} (config)")
        else:
            guess = info.get("task") or (task if task in TASKS else None)
            if guess is None or get_task(guess).kind != kind:
                guess = task_of_kind(kind).name
            cfg = TrainConfig(task=guess)
    except (InputError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{checkpoint}: its training config is unusable: {exc}") from exc
    if task is not None and cfg.task != task:
        raise CheckpointError(
            f"{checkpoint}: does not match: task: checkpoint is {cfg.task} "
            f"({cfg.spec.kind}), expected {task}"
        )
    if cfg.spec.kind != kind:
        raise CheckpointError(
            f"{checkpoint}: its model predicts {kind}, but its task {cfg.task} is {cfg.spec.kind}"
        )
    for key, value in (overrides or {}).items():
        if value is not None:
            setattr(cfg, key, value)
    return cfg


def evaluate_all_points(
    predictor: Predictor,
    dataset: Any,
    *,
    transform: Any = "auto",
    category_names: Sequence[str] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Score a segmenter on every point of every shape of a ShapeNetPart split.

    Args:
        predictor: a segmentation :class:`Predictor`.
        dataset: a ShapeNetPart dataset (PyG ``InMemoryDataset``): shapes are taken with
            ``dataset.get(i)``, before its transform (no sampling).
        transform: applied to each full shape first; ``"auto"``: the dataset's own
            evaluation transform without its point sampling (so the text archives are
            centred and scaled into the unit sphere exactly as in training).
        category_names: keys of ``per_category_iou`` (default: the dataset's categories).
        progress: show a progress bar.

    Returns:
        the segmentation metrics plus ``points: "all"`` and ``points_scored`` (the
        number of points compared with their labels).
    """
    if not predictor.labels_points:
        raise InputError(
            f"evaluate_all_points: the model is a {predictor.kind} model, not a part segmenter"
        )
    parts = getattr(dataset, "category_parts", None)
    if parts is None:
        from ..datasets.shapenetpart import CATEGORY_PARTS as parts
    names = category_names or list(getattr(dataset, "categories", [])) or None
    meter = SegmentationMeter(parts, names)
    prepare = without_sampling(dataset.transform) if transform == "auto" else transform
    scored = 0
    indices = range(len(dataset))
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="all points", leave=False)
    for i in indices:
        data = dataset.get(int(i))  # the full shape, before the sampling transform
        if prepare is not None:
            data = prepare(data.clone())
        cat = int(data.category.reshape(-1)[0])
        x = getattr(data, "x", None)
        logits = predictor.logits(data.pos, x, cat).cpu()
        t_cat = torch.tensor([cat])
        pred = predict_parts(logits, t_cat, parts)
        target = data.y.reshape(-1).long().cpu()
        meter.update(pred, target, t_cat)
        scored += int(target.numel())
    return {**meter.compute(), "points": "all", "points_scored": scored}


def without_sampling(transform: Any) -> Any:
    """``transform`` with its :class:`~pointea.transforms.SubsamplePoints` steps removed
    (a PyG ``Compose`` is filtered; a lone sampler gives ``None``)."""
    from torch_geometric.transforms import Compose

    if transform is None or isinstance(transform, SubsamplePoints):
        return None
    if isinstance(transform, Compose):
        steps = [t for t in transform.transforms if not isinstance(t, SubsamplePoints)]
        return Compose(steps) if steps else None
    return transform
