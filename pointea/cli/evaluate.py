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

from ..errors import DatasetNotFoundError, InputError, PointeaError
from ..files import safe_name
from ..tasks import TASKS, get_task

__all__ = ["build_parser", "main"]

PROG = "pointea-eval"


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
        choices=sorted(TASKS),
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
            from ..outputs import check_output

            ck = Path(args.checkpoint)
            check_output(args.output, inputs=[ck, ck / "checkpoints" / "best.pt"],
                         overwrite=args.overwrite)  # fmt: skip
        from ..inference.evaluation import evaluate_checkpoint

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
            from ..files import atomic_write
            from ..outputs import JSON_MARKER

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

    task = get_task(result["task"])
    count = result.get("num_samples", result.get("num_shapes", result.get("num_rooms")))
    print(
        f"{safe_name(args.checkpoint)} on {task.name} {args.split} ({count} {task.unit}, "
        + (
            f"every point: {result['points_scored']} points)"
            if result.get("points") == "all"
            else f"{result.get('points')} points each)"
        )
        + (f", {args.votes} votes" if args.votes > 1 else "")
    )
    print("\n".join(format_metrics(result, task)))
    if args.votes > 1:
        print("without voting:")
        print("\n".join(format_metrics(result["no_voting"], task, max_items=0)[:2]))
    if args.output is not None:
        print(f"written: {safe_name(args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
