"""``pointea-eval CHECKPOINT``: metrics of a saved model on a dataset split.

Accepts a training checkpoint (``runs/x/checkpoints/best.pt``), a ``save_pretrained``
folder or a converted PCT_Pytorch file. The dataset settings (data root, points, format,
synthetic) default to those the checkpoint was trained with; flags override them.
With ``--votes N`` the logits of N passes (the plain one and N-1 randomly scaled ones)
are averaged; the numbers without voting are reported beside them.

Exit codes: 0 done, 2 bad flags / checkpoint / data, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, DatasetNotFoundError, InputError, PointeaError
from ..files import safe_name

__all__ = ["build_parser", "evaluate_checkpoint", "main"]

PROG = "pointea-eval"
_TASK_OF_KIND = {"classification": "modelnet40", "segmentation": "shapenetpart", "semseg": "s3dis"}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``pointea-eval``."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Evaluate a trained pointea model on a dataset split.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        epilog=(
            "examples:\n"
            "  pointea-eval runs/ea/checkpoints/best.pt                    test split\n"
            "  pointea-eval runs/ea/checkpoints/best.pt --votes 10 --output ev.json\n"
            "  pointea-eval pretrained_dir/ --task modelnet40 --data-root data\n"
            "keys: overall_accuracy, mean_class_accuracy, per_class_accuracy "
            "(classification);\n"
            "instance_miou, class_miou, per_category_iou (segmentation); with --votes the\n"
            "voted numbers, and the single-pass ones under 'no_voting'."
        ),
    )
    p.add_argument(
        "checkpoint",
        help="training checkpoint (.pt), run folder (its "
        "checkpoints/best.pt), save_pretrained folder, or "
        "converted PCT_Pytorch file",
    )
    p.add_argument(
        "--task",
        choices=sorted(_TASK_OF_KIND.values()),
        default=None,
        help="expected task; an error if the checkpoint is of another task",
    )
    p.add_argument(
        "--split",
        choices=["test", "val", "train", "trainval"],
        default="test",
        help="split to evaluate (default: test)",
    )
    p.add_argument(
        "--votes", type=int, default=1, help="test-time voting passes (default: 1, no voting)"
    )
    p.add_argument(
        "--data-root", default=None, help="dataset folder (default: the checkpoint's, else data)"
    )
    p.add_argument(
        "--data-format",
        default=None,
        help="dataset format (default: the checkpoint's / the dataset's default)",
    )
    p.add_argument(
        "--synthetic",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="use the offline procedural set (default: as in training)",
    )
    p.add_argument("--download", action="store_true", help="download the dataset if missing")
    p.add_argument(
        "--num-points", type=int, default=None, help="points per cloud (default: the checkpoint's)"
    )
    p.add_argument(
        "--all-points",
        action="store_true",
        help="segmentation: score every point of each shape (large shapes are streamed) "
        'instead of the sampled --num-points; recorded as "points": "all"',
    )
    p.add_argument("--batch-size", type=int, default=32, help="default: 32")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda ...")
    p.add_argument("--workers", type=int, default=0, help="data-loader workers (default: 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the voting draws (default: 0)")
    p.add_argument("--output", type=Path, default=None, help="also write the metrics as JSON")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --output file that pointea did not write",
    )
    p.add_argument("--pool", nargs="+", metavar="RUN", help="pool S3DIS runs' test areas (6-fold)")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="progress bar (default: on)",
    )
    return p


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
        checkpoint: training checkpoint, pretrained folder or PCT_Pytorch file.
        split: dataset split.
        task: expected task name (``modelnet40`` / ``shapenetpart``); mismatch is a
            :class:`~pointea.errors.CheckpointError`.
        votes: voting passes (1: none).
        overrides: dataset settings replacing the checkpoint's (``data_root``,
            ``data_format``, ``synthetic``, ``download``, ``num_points``).
        batch_size / device / workers / seed / progress: evaluation settings.
        all_points: segmentation only: score every point of each shape
            (:func:`pointea.inference.evaluate_all_points`) instead of the sampled ones.

    Returns:
        the metrics dict (plus ``task``, ``split``, ``checkpoint``, ``votes``).
    """
    import torch

    from ..engine.config import TrainConfig, read_saved_config
    from ..engine.distributed import resolve_device
    from ..engine.trainer import EpochSeededDataset, autocast, build_split, evaluate, make_loader
    from ..models import load_model

    if votes < 1:
        raise InputError(f"--votes must be >= 1, got {votes}")
    if batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {batch_size}")
    if all_points and votes > 1:
        raise InputError("--all-points scores each shape once; drop --votes")
    path = Path(checkpoint)
    if (
        path.is_dir()
        and (path / "checkpoints" / "best.pt").is_file()
        and not (path / "model.safetensors").exists()
    ):
        checkpoint = path / "checkpoints" / "best.pt"  # a run folder: its selected model
    model, info = load_model(checkpoint)
    kind = info.get("task")
    problems = []
    if task is not None and _TASK_OF_KIND.get(kind) != task:
        problems.append(f"task: checkpoint is {kind} ({_TASK_OF_KIND.get(kind)}), expected {task}")
    saved = dict(info.get("config") or {})
    try:
        cfg = (
            read_saved_config(saved, source=f"{checkpoint} (config)")
            if saved
            else (TrainConfig(task=_TASK_OF_KIND[kind]))
        )
    except (InputError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{checkpoint}: its training config is unusable: {exc}") from exc
    for key, value in (overrides or {}).items():
        if value is not None:
            setattr(cfg, key, value)
    if cfg.num_points is None and info.get("num_points"):
        cfg.num_points = int(info["num_points"])
    cfg.model = getattr(model, "name", cfg.model)
    cfg.epochs = max(cfg.epochs or 1, 1)
    cfg = cfg.resolved()
    hparams = getattr(model, "hparams", {}) or {}
    if votes > 1 and kind == "semseg":
        problems.append("--votes: scenes are scored on whole rooms, exactly (no voting)")
    if all_points and kind != "segmentation":
        problems.append("--all-points: only part segmentation scores points")
    if problems:
        raise CheckpointError(f"{checkpoint}: does not match: " + "; ".join(problems))

    dataset = build_split(cfg, split, train=False)
    scene = kind == "semseg"  # whole S3DIS rooms, every point, one room per batch
    num_classes = len(dataset_classes := _scene_classes()) if scene else dataset.num_classes
    model_classes = hparams.get("num_parts" if kind == "segmentation" else "num_classes")
    if model_classes is not None and int(model_classes) != num_classes:
        raise CheckpointError(
            f"{checkpoint}: the model predicts {model_classes} "
            f"{'classes' if kind == 'classification' else 'parts'} but the {cfg.task} "
            f"{split} split at {cfg.data_root or 'data'} has {num_classes}"
        )
    names = list(
        dataset_classes
        if scene
        else dataset.class_names
        if kind == "classification"
        else dataset.categories
    )
    saved_names = info.get("class_names")
    if kind == "classification" and saved_names and list(saved_names) != names:
        print(
            f"{PROG}: warning: the dataset's class names differ from the checkpoint's",
            file=sys.stderr,
        )
    dev = resolve_device(device)
    model.to(dev).eval()
    if all_points:
        from ..inference import Predictor, evaluate_all_points

        predictor = Predictor(model, num_points=None, device=dev)
        result = evaluate_all_points(predictor, dataset, category_names=names, progress=progress)
        return {
            "task": cfg.task,
            "split": split,
            "checkpoint": str(checkpoint),
            "votes": 1,
            "epoch": info.get("epoch"),
            **result,
        }
    loader = make_loader(
        EpochSeededDataset(dataset, cfg.seed),
        batch_size=1 if scene else batch_size,
        sampler=None,
        workers=workers,
        device=dev,
    )
    category_parts = dataset.category_parts if kind == "segmentation" else None
    kw = dict(
        kind=kind,
        num_classes=num_classes,
        class_names=names,
        category_parts=category_parts,
        autocast=autocast(cfg, dev) if cfg.bf16 else None,
    )
    from ..engine.distributed import DistContext

    ctx = DistContext(device=dev)
    with torch.no_grad():
        result = evaluate(model, loader, ctx=ctx, progress=progress, desc=f"{split}", **kw)
        if votes > 1:
            single = result
            result = evaluate(
                model,
                loader,
                ctx=ctx,
                votes=votes,
                vote_seed=seed,
                progress=progress,
                desc=f"{split} x{votes} votes",
                **kw,
            )
            result["no_voting"] = single
    return {
        "task": cfg.task,
        "split": split,
        "checkpoint": str(checkpoint),
        "votes": votes,
        "epoch": info.get("epoch"),
        "points": "all" if scene else cfg.num_points,
        **({"points_scored": result["num_points"]} if scene else {}),
        **result,
    }


def _scene_classes() -> tuple[str, ...]:
    from ..datasets.s3dis import CLASSES

    return CLASSES


def main(argv: Sequence[str] | None = None) -> int:
    """``pointea-eval``: print (and optionally save) a checkpoint's metrics on a split."""
    if "--pool" in (argv := list(sys.argv[1:] if argv is None else argv)):
        from ..metrics.scenes import pool_main  # 6-fold S3DIS: the runs' points pooled

        return pool_main(argv, PROG)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.votes < 1:
        parser.error(f"--votes must be >= 1, got {args.votes}")
    if args.synthetic and args.download:
        parser.error("--synthetic data is generated offline; drop --download")
    overrides = {
        "data_root": args.data_root,
        "data_format": args.data_format,
        "synthetic": args.synthetic,
        "download": args.download or None,
        "num_points": args.num_points,
    }
    try:
        if args.output is not None:  # before the evaluation: never over a user's file
            from ..files import check_output

            ck = Path(args.checkpoint)
            check_output(args.output, inputs=[ck, ck / "checkpoints" / "best.pt"],
                         overwrite=args.overwrite)  # fmt: skip
        result = evaluate_checkpoint(
            args.checkpoint,
            split=args.split,
            task=args.task,
            votes=args.votes,
            overrides=overrides,
            batch_size=args.batch_size,
            device=args.device,
            workers=args.workers,
            seed=args.seed,
            progress=args.progress,
            all_points=args.all_points,
        )
        if args.output is not None:
            from ..files import JSON_MARKER
            from ..serialization import atomic_write

            data = (json.dumps({**JSON_MARKER, **result}, indent=2) + "\n").encode()
            try:
                atomic_write(args.output, lambda f: f.write(data))
            except OSError as exc:
                raise InputError(f"--output {args.output}: {exc.strerror or exc}") from exc
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130
    except DatasetNotFoundError as exc:
        print(
            f"{PROG}: error: {safe_name(str(exc))}\n"
            "With internet access, rerun with --download to fetch it.",
            file=sys.stderr,
        )
        return 2
    except PointeaError as exc:
        print(f"{PROG}: error: {safe_name(str(exc))}", file=sys.stderr)
        return 2
    from ..engine.report import format_metrics

    kind = {v: k for k, v in _TASK_OF_KIND.items()}.get(result["task"], "segmentation")
    count = result.get("num_samples", result.get("num_shapes", result.get("num_rooms")))
    unit = {"classification": "clouds", "semseg": "rooms"}.get(kind, "shapes")
    print(
        f"{safe_name(args.checkpoint)} on {result['task']} {args.split} ({count} {unit}, "
        + (
            f"every point: {result['points_scored']} points)"
            if result.get("points") == "all"
            else f"{result.get('points')} points each)"
        )
        + (f", {args.votes} votes" if args.votes > 1 else "")
    )
    print("\n".join(format_metrics(result, kind)))
    if args.votes > 1:
        print("without voting:")
        print("\n".join(format_metrics(result["no_voting"], kind, max_items=0)[:2]))
    if args.output is not None:
        print(f"written: {safe_name(args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
