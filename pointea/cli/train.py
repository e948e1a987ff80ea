"""``pointea-train`` (shape classification) and ``pointea-seg`` (part segmentation).

Thin entry points: parse the flags into a :class:`~pointea.engine.TrainConfig` and call
:func:`pointea.engine.train`. Exit codes: 0 done, 1 the run failed (non-finite loss,
output folder in use, disk full ...), 2 bad flags / data / checkpoint, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..errors import DatasetNotFoundError, PointeaError, TrainingError

__all__ = ["build_parser", "main", "main_seg"]

_EPILOG = """\
recipe defaults (no flags needed to reproduce the papers' setting):
  modelnet40    SGD lr 0.01, momentum 0.9, weight decay 5e-4, cosine to 1e-4 over 250
                epochs, batch 32, first 1024 of 2048 points, label smoothing 0.2,
                scale U[2/3,3/2] + shift U[-0.2,0.2] + point dropout (max 0.875);
                best epoch chosen on a 10%% validation split carved from train.
  shapenetpart  the same SGD / cosine schedule, 250 epochs, batch 16, 2048 random points,
                plain cross-entropy over the 50 parts, scale + shift; best epoch on
                ShapeNetPart's val split, final numbers on test (predictions restricted
                to the shape's category parts).

the run folder (--output-dir): config.json, metrics.jsonl, checkpoints/last.pt,
checkpoints/best.pt, test_metrics.json, training_curves.png. A folder holds one run:
a second run into it is refused (lock file), a non-empty one needs --resume or
--overwrite.

examples:
  %(prog)s --synthetic --model {tiny} --epochs 10
      train on the offline procedural data (generated on first use)
  %(prog)s --data-root data --download --output-dir runs/a
      the real dataset, downloaded into data/ when missing
  %(prog)s --output-dir runs/a --resume
      continue that run after a crash or Ctrl-C (same final numbers as without the stop)
  pointea-eval runs/a/checkpoints/best.pt --votes 10
      evaluate the selected checkpoint on test, with test-time voting

exit status: 0 done, 1 the run failed (non-finite loss, folder in use, disk full),
2 bad flags, data or checkpoint, 130 interrupted.

distributed (DistributedDataParallel; --batch-size is the global batch):
  torchrun --nproc_per_node=4 -m pointea.cli.{module} [flags]
  torchrun --nnodes=2 --nproc_per_node=8 --node_rank=0 --rdzv_backend=c10d \\
      --rdzv_endpoint=host0:29500 --rdzv_id=myrun -m pointea.cli.{module} [flags]
  (run the same line on every node with its --node_rank; keep --output-dir on a
  shared filesystem). NCCL on GPUs, gloo on CPU; only rank 0 writes files.
"""


def build_parser(task: str = "modelnet40", prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``pointea-train`` (``task="modelnet40"``) or ``pointea-seg``."""
    seg = task == "shapenetpart"
    parser = argparse.ArgumentParser(
        prog=prog or ("pointea-seg" if seg else "pointea-train"),
        description=(
            "Train a PCT-style point transformer with external (or self) attention on "
            + ("ShapeNetPart part segmentation." if seg else "ModelNet40 classification.")
        ),
        epilog=_EPILOG.format(
            tiny="pct_seg_tiny" if seg else "pct_cls_tiny",
            module="train --task shapenetpart" if seg else "train",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    g = parser.add_argument_group("task and model")
    g.add_argument(
        "--task",
        choices=["modelnet40", "shapenetpart"],
        default=task,
        help="modelnet40: shape classification; shapenetpart: part segmentation "
        "(default: %(default)s)",
    )
    g.add_argument(
        "--model",
        metavar="NAME",
        default=None,
        help="registry preset: pct_cls / pct_cls_tiny (classification), pct_seg / "
        "pct_seg_tiny (segmentation); default: the full model of the task",
    )
    g.add_argument(
        "--attention",
        choices=["external", "self"],
        default="external",
        help="attention in the offset-attention layers (default: %(default)s)",
    )
    g.add_argument(
        "--memory-units",
        type=int,
        metavar="S",
        default=None,
        help="external-attention memory size (default: the model's, 64)",
    )
    g.add_argument(
        "--dropout",
        type=float,
        metavar="P",
        default=None,
        help="dropout of the head (default: the model's, 0.5)",
    )
    g.add_argument(
        "--normals",
        dest="use_normals",
        action="store_true",
        help="feed the per-point normals as extra features (in_channels=6)",
    )

    g = parser.add_argument_group("data")
    g.add_argument(
        "--data-root",
        metavar="DIR",
        default=None,
        help="folder holding the dataset folder (default: data; with --synthetic: data/synthetic)",
    )
    g.add_argument(
        "--data-format",
        metavar="FMT",
        default=None,
        help="on-disk format: hdf5 / resampled (modelnet40), text / hdf5 "
        "(shapenetpart); default: hdf5 / text",
    )
    g.add_argument(
        "--synthetic",
        action="store_true",
        help="use the offline procedural stand-in set (generated on first use)",
    )
    g.add_argument(
        "--download",
        action="store_true",
        help="download the dataset into --data-root when it is missing",
    )
    g.add_argument(
        "--categories",
        nargs="+",
        metavar="NAME",
        default=None,
        help="shapenetpart: train on these categories only",
    )
    g.add_argument(
        "--num-points",
        type=int,
        metavar="N",
        default=None,
        help="points per cloud (default: 1024 classification, 2048 segmentation)",
    )
    g.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        metavar="F",
        help="modelnet40: share of train carved out for validation (default: 0.1)",
    )
    g.add_argument(
        "--split-seed", type=int, default=0, help="seed of that validation carve-out (default: 0)"
    )
    g.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="random scale + shift (+ point dropout) on training clouds",
    )
    g.add_argument(
        "--point-dropout",
        type=float,
        metavar="R",
        default=None,
        help="max share of points dropped (default: 0.875 classification, "
        "0 segmentation; 0 turns it off)",
    )

    g = parser.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=250, help="number of epochs (default: 250)")
    g.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="global batch size, split across processes (default: 32 / 16)",
    )
    g.add_argument(
        "--eval-batch-size",
        type=int,
        default=None,
        help="validation / test batch size (default: --batch-size)",
    )
    g.add_argument(
        "--optimizer",
        choices=["sgd", "adam"],
        default="sgd",
        help="default: sgd (Adam at 1e-3 is reported to diverge for PCT)",
    )
    g.add_argument(
        "--lr",
        type=float,
        default=None,
        help="initial learning rate (default: 0.01 SGD, 1e-3 Adam)",
    )
    g.add_argument(
        "--min-lr",
        type=float,
        default=None,
        help="final lr of the cosine schedule (default: 1e-4 for SGD 0.01, else lr/100)",
    )
    g.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default: 0.9)")
    g.add_argument("--weight-decay", type=float, default=5e-4, help="default: 5e-4")
    g.add_argument(
        "--label-smoothing",
        type=float,
        default=None,
        help="default: 0.2 classification, 0 segmentation",
    )
    g.add_argument(
        "--grad-clip",
        type=float,
        default=None,
        metavar="NORM",
        help="clip the gradient norm (default: off)",
    )
    g.add_argument(
        "--skip-nonfinite",
        action="store_true",
        help="skip batches with a NaN/inf loss instead of stopping the run",
    )

    g = parser.add_argument_group("run")
    g.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of init, shuffling, augmentation, dropout (default: 0)",
    )
    g.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA when present), cpu, cuda, cuda:1 ... (default: auto)",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=None,
        help="data-loader workers (default: 0 on CPU, 4 on CUDA)",
    )
    g.add_argument("--amp", action="store_true", help="float16 mixed precision (CUDA only)")
    g.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CPU or CUDA)")
    g.add_argument(
        "--sync-bn",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="synchronise BatchNorm across processes when distributed",
    )
    g.add_argument(
        "--output-dir",
        metavar="DIR",
        default=None,
        help="run folder (default: runs/<task>-<attention>-<time>)",
    )
    g.add_argument(
        "--resume",
        nargs="?",
        const="",
        default=None,
        metavar="RUN_DIR",
        help="continue the stopped run in --output-dir (or in RUN_DIR)",
    )
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the files of an earlier run in a non-empty --output-dir",
    )
    g.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="progress bars (default: on)",
    )
    return parser


def _explicit(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """Destinations of the options present on the command line."""
    given = set()
    for token in argv:
        if token == "--":
            break
        name = token.split("=", 1)[0]
        for action in parser._actions:
            if name in action.option_strings:
                given.add(action.dest)
    return given


def _config(args: argparse.Namespace):
    from ..engine.config import TrainConfig

    output_dir = args.output_dir
    if args.resume:  # --resume RUN_DIR (or RUN_DIR/checkpoints/last.pt)
        from pathlib import Path

        target = Path(args.resume)
        if target.is_file() and target.parent.name == "checkpoints":
            target = target.parent.parent
        if output_dir is not None and Path(output_dir).resolve() != target.resolve():
            raise _Usage(
                f"--resume {args.resume} and --output-dir {output_dir} name "
                "different runs; give one of them"
            )
        output_dir = str(target)
    if output_dir is None:
        if args.resume is not None:
            raise _Usage(
                "--resume needs the run folder: --output-dir DIR --resume (or --resume DIR)"
            )
        import time

        output_dir = f"runs/{args.task}-{args.attention}-{time.strftime('%Y%m%d-%H%M%S')}"
    return TrainConfig(
        task=args.task,
        model=args.model,
        attention=args.attention,
        memory_units=args.memory_units,
        dropout=args.dropout,
        use_normals=args.use_normals,
        data_root=args.data_root,
        data_format=args.data_format,
        synthetic=args.synthetic,
        download=args.download,
        categories=args.categories,
        epochs=args.epochs,
        batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size,
        num_points=args.num_points,
        optimizer=args.optimizer,
        lr=args.lr,
        min_lr=args.min_lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        augment=args.augment,
        point_dropout=args.point_dropout,
        val_fraction=args.val_fraction,
        split_seed=args.split_seed,
        seed=args.seed,
        device=args.device,
        workers=args.workers,
        amp=args.amp,
        bf16=args.bf16,
        sync_bn=args.sync_bn,
        skip_nonfinite=args.skip_nonfinite,
        grad_clip=args.grad_clip,
        output_dir=output_dir,
    )


class _Usage(Exception):
    pass


def _run(argv: Sequence[str] | None, task: str) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(task)
    args = parser.parse_args(argv)
    if args.resume is not None and args.overwrite:
        parser.error("--resume continues a run and --overwrite replaces it; choose one")
    try:
        cfg = _config(args)
        cfg.validate()
    except _Usage as exc:
        parser.error(str(exc))
    except PointeaError as exc:
        parser.error(str(exc).replace("invalid settings: ", ""))
    explicit = _explicit(parser, argv) - {"resume", "overwrite", "progress"}
    from ..engine import train

    try:
        train(
            cfg,
            resume=args.resume is not None,
            overwrite=args.overwrite,
            progress=args.progress,
            explicit=explicit,
        )
    except KeyboardInterrupt:
        _error(
            f"\n{parser.prog}: interrupted; continue with --output-dir {cfg.output_dir} --resume"
        )
        return 130
    except TrainingError as exc:
        _error(f"{parser.prog}: error: {exc}")
        return 1
    except DatasetNotFoundError as exc:
        _error(f"{parser.prog}: error: {exc}\n{_download_hint(cfg)}")
        return 2
    except PointeaError as exc:
        _error(f"{parser.prog}: error: {exc}")
        return 2
    except OSError as exc:  # e.g. an unwritable --output-dir
        _error(f"{parser.prog}: error: {exc}")
        return 1
    return 0


def _error(message: str) -> None:
    """Print to stderr once: under torchrun only rank 0 speaks (all ranks fail alike)."""
    if os.environ.get("RANK", "0") == "0":
        print(message, file=sys.stderr, flush=True)


def _download_hint(cfg) -> str:
    root = cfg.data_root or "data"
    return (
        f"With internet access, rerun with --download (--data-root {root}) to fetch it; "
        "or train on the offline procedural stand-in with --synthetic."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``pointea-train``: ModelNet40 classification (``--task`` switches)."""
    return _run(argv, "modelnet40")


def main_seg(argv: Sequence[str] | None = None) -> int:
    """``pointea-seg``: ShapeNetPart part segmentation."""
    return _run(argv, "shapenetpart")


if __name__ == "__main__":  # python -m pointea.cli.train (torchrun)
    sys.exit(main())
