"""``pointea-train`` (shape classification), ``pointea-seg`` (part segmentation) and
``pointea-semseg`` (scene semantic segmentation, :mod:`pointea.cli.semseg`).

Thin entry points: the flags are derived from :class:`~pointea.engine.TrainConfig`'s
fields (help text from their metadata, defaults from the task's recipe), parsed into one
config and handed to :func:`pointea.engine.train`. Exit codes: 0 done, 1 the run failed
(non-finite loss, output folder in use, disk full ...), 2 bad flags / data / checkpoint,
130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..engine.config import SETTING_GROUPS, TrainConfig
from ..engine.recipe_text import recipe_epilog
from ..errors import DatasetNotFoundError, PointeaError, TrainingError
from ..tasks import get_task
from .reporting import emit

__all__ = [
    "add_setting_arguments",
    "build_parser",
    "main",
    "main_seg",
    "parse_config",
    "run_task",
]

_EPILOG = """\
{recipes}  (object tasks: a fresh point order per training cloud every epoch; part predictions
  restricted to the shape's category; s3dis: validation rooms from the training areas,
  the test area segmented whole in one exact pass, --block-vote adds 1 m blocks)
protocols (--protocol): validation (default) selects the best epoch on a validation
  split (10%% carved from ModelNet40's train; ShapeNetPart's val) and never on test;
  full-train trains on every training shape (ShapeNetPart: train + val, as the
  reference) and keeps the last epoch. The references select on test; pointea does not.

the run folder (--output-dir): config.json, metrics.jsonl, checkpoints/last.pt,
checkpoints/best.pt, test_metrics.json, training_curves.png. A folder holds one run:
a second run into it is refused (lock file), a non-empty one needs --resume or
--overwrite.

examples:
  %(prog)s --synthetic --model {tiny} --epochs 10
      train on the offline procedural data (generated on first use)
{examples}  %(prog)s --output-dir runs/a --resume
      continue that run after a crash or Ctrl-C (same final numbers as without the stop)

exit status: 0 done, 1 the run failed (non-finite loss, folder in use, disk full),
2 bad flags, data or checkpoint, 130 interrupted.

distributed (DistributedDataParallel; --batch-size is the global batch):
  torchrun --nproc_per_node=4 -m pointea.cli.{module} [flags]
  torchrun --nnodes=2 --nproc_per_node=8 --node_rank=0 --rdzv_backend=c10d \\
      --rdzv_endpoint=host0:29500 --rdzv_id=myrun -m pointea.cli.{module} [flags]
  (run the same line on every node with its --node_rank; keep --output-dir on a
  shared filesystem). NCCL on GPUs, gloo on CPU; only rank 0 writes files.
"""


#: task -> (program, what it trains, tiny preset, torchrun module + task flag)
_ENTRIES = {
    "modelnet40": ("pointea-train", "ModelNet40 classification.", "pct_cls_tiny", "train"),
    "shapenetpart": (
        "pointea-seg",
        "ShapeNetPart part segmentation.",
        "pct_seg_tiny",
        "train --task shapenetpart",
    ),
    "s3dis": (
        "pointea-semseg",
        "S3DIS semantic segmentation of whole rooms.",
        "pct_semseg_tiny",
        "semseg",
    ),
}

_DOWNLOAD_EXAMPLE = """\
  %(prog)s --data-root data --download --output-dir runs/a
      the real dataset, downloaded into data/ when missing
"""
_EVAL_EXAMPLE = """\
  pointea-eval runs/a/checkpoints/best.pt --votes 10
      evaluate the selected checkpoint on test, with test-time voting
"""
#: task-specific lines of the ``--help`` examples
_EXAMPLES = {
    "modelnet40": _DOWNLOAD_EXAMPLE + _EVAL_EXAMPLE,
    "shapenetpart": _DOWNLOAD_EXAMPLE + _EVAL_EXAMPLE,
    "s3dis": """\
  %(prog)s --data-root data --test-area 5 --block-vote --output-dir runs/a
      S3DIS as published (data/Stanford3dDataset_v1.2_Aligned_Version, fetched by hand),
      Area 5 held out, block-and-vote numbers beside the whole-room ones
""",
}

#: command-line options that are not settings of the run
_SESSION_OPTIONS = ("resume", "overwrite", "progress", "tensorboard")

#: (task, setting) -> help text that differs from the field's own
_TASK_HELP = {
    ("s3dis", "data_root"): (
        "folder holding the dataset folder (default: data; with --synthetic: data/rooms)"
    ),
}


def _flag(name: str) -> str:
    """The command-line flag of the setting ``name``."""
    f = next(f for f in dataclasses.fields(TrainConfig) if f.name == name)
    return f.metadata.get("flag", "--" + name.replace("_", "-"))


def inapplicable(cfg: TrainConfig, given: dict[str, Any]) -> str | None:
    """One line refusing the first setting in ``given`` (those typed on the command line,
    with their values) that ``cfg.task`` would ignore, or ``None`` when every one applies."""
    for name, why in cfg.spec.refused.items():
        if name in given:
            flag = _flag(name)
            if given[name] is False:  # typed as --no-...
                flag = "--no-" + flag.removeprefix("--")
            return f"{flag} does not apply to task {cfg.task}: {why}; drop it"
    return None


def _default_text(f: dataclasses.Field, task: str) -> str | None:
    """What ``--help`` shows as the default of a setting (the task's recipe value when
    the field defers to it)."""
    recipe = get_task(task).recipe
    if f.name in recipe:
        value = recipe[f.name]
    elif f.name == "task":
        value = task
    elif f.default is None or f.name == "output_dir" or "default:" in f.metadata["help"]:
        return None
    else:
        value = f.default
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_setting_arguments(parser: argparse.ArgumentParser, task: str) -> None:
    """One flag per :class:`TrainConfig` field, from the field's metadata.

    Every flag's default is ``argparse.SUPPRESS``: the namespace holds only the settings
    given on the command line, the others keep the config's (recipe) defaults.
    """
    hints = typing.get_type_hints(TrainConfig)
    groups = {name: parser.add_argument_group(name) for name in SETTING_GROUPS}
    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata
        flag = meta.get("flag", "--" + f.name.replace("_", "-"))
        default = _default_text(f, task)
        own_help = _TASK_HELP.get((task, f.name), meta["help"])
        help_text = own_help + (f" (default: {default})" if default is not None else "")
        kwargs: dict[str, Any] = {
            "dest": f.name,
            "default": argparse.SUPPRESS,
            "help": help_text.replace("%", "%%"),
        }
        kind = {a for a in typing.get_args(hints[f.name]) if a is not type(None)} or {hints[f.name]}
        (base,) = kind
        if base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(base) is list:
            kwargs["nargs"] = "+"
            kwargs["type"] = typing.get_args(base)[0]
        else:
            kwargs["type"] = base
        for key in ("metavar", "choices"):
            if key in meta:
                kwargs[key] = meta[key]
        groups[meta["group"]].add_argument(flag, **kwargs)


def build_parser(task: str = "modelnet40", prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``pointea-train`` (``task="modelnet40"``) or ``pointea-seg``:
    the settings' flags derived from :class:`TrainConfig`, plus the session options."""
    entry = _ENTRIES[task]
    parser = argparse.ArgumentParser(
        prog=prog or entry[0],
        description=(
            "Train a PCT-style point transformer with external (or self) attention on " + entry[1]
        ),
        epilog=_EPILOG.format(
            recipes=recipe_epilog(), tiny=entry[2], module=entry[3], examples=_EXAMPLES[task]
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    add_setting_arguments(parser, task)
    g = parser.add_argument_group("session (not settings of the run)")
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
        help="progress bars on a terminal; never changes the numbers (default: on)",
    )
    g.add_argument(
        "--tensorboard",
        action="store_true",
        help="also log each epoch's numbers for TensorBoard under RUN_DIR/tensorboard "
        "(needs the tensorboard package)",
    )
    return parser


def parse_config(
    argv: Sequence[str], task: str = "modelnet40"
) -> tuple[TrainConfig, argparse.Namespace, set[str]]:
    """``(config, namespace, explicit)`` of a ``pointea-train`` / ``pointea-seg`` command
    line; ``explicit`` names the settings given on it. Exits (status 2) on bad flags."""
    parser = build_parser(task)
    args = parser.parse_args(list(argv))
    if args.resume is not None and args.overwrite:
        parser.error("--resume continues a run and --overwrite replaces it; choose one")
    given = {k: v for k, v in vars(args).items() if k not in _SESSION_OPTIONS}
    try:
        cfg = TrainConfig(**{"task": task, **given})
        cfg.output_dir = _output_dir(args, cfg)
        cfg.validate()
        refused = inapplicable(cfg, given)
        if refused:
            raise _Usage(refused)
    except _Usage as exc:
        parser.error(str(exc))
    except PointeaError as exc:
        parser.error(str(exc).replace("invalid settings: ", ""))
    return cfg, args, set(given)


def _output_dir(args: argparse.Namespace, cfg: TrainConfig) -> str:
    output_dir = getattr(args, "output_dir", None)
    if args.resume:  # --resume RUN_DIR (or RUN_DIR/checkpoints/last.pt)
        target = Path(args.resume)
        if target.is_file() and target.parent.name == "checkpoints":
            target = target.parent.parent
        if output_dir is not None and Path(output_dir).resolve() != target.resolve():
            raise _Usage(
                f"--resume {args.resume} and --output-dir {output_dir} name "
                "different runs; give one of them"
            )
        return str(target)
    if output_dir is None:
        if args.resume is not None:
            raise _Usage(
                "--resume needs the run folder: --output-dir DIR --resume (or --resume DIR)"
            )
        return f"runs/{cfg.task}-{cfg.attention}-{time.strftime('%Y%m%d-%H%M%S')}"
    return output_dir


class _Usage(Exception):
    pass


def run_task(argv: Sequence[str] | None, task: str, callbacks: Sequence[Any] = ()) -> int:
    """Parse ``argv`` as the command line of ``task``'s trainer and run it; returns the
    exit status (0 done, 1 failed, 2 bad flags / data / checkpoint, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg, args, explicit = parse_config(argv, task)
    prog = build_parser(task).prog
    from ..engine import TensorBoardLogger, train

    try:
        if args.tensorboard:
            callbacks = [*callbacks, TensorBoardLogger()]
        train(
            cfg,
            resume=args.resume is not None,
            overwrite=args.overwrite,
            progress=args.progress,
            explicit=explicit,
            callbacks=callbacks,
        )
    except KeyboardInterrupt:
        _error(f"\n{prog}: interrupted; continue with --output-dir {cfg.output_dir} --resume")
        return 130
    except TrainingError as exc:
        _error(f"{prog}: error: {exc}")
        return 1
    except DatasetNotFoundError as exc:
        _error(f"{prog}: error: {exc}\n{cfg.spec.download_hint(cfg)}")
        return 2
    except PointeaError as exc:
        _error(f"{prog}: error: {exc}")
        return 2
    except OSError as exc:  # e.g. an unwritable --output-dir
        _error(f"{prog}: error: {exc}")
        return 1
    return 0


def _error(message: str) -> None:
    """Print to stderr once: under torchrun only rank 0 speaks (all ranks fail alike)."""
    if os.environ.get("RANK", "0") == "0":
        emit(message, sys.stderr)  # names escaped (pointea.files.safe_name)


def main(argv: Sequence[str] | None = None, *, callbacks: Sequence[Any] = ()) -> int:
    """``pointea-train``: ModelNet40 classification (``--task`` switches).

    ``callbacks``: :class:`pointea.engine.Callback` hooks for the run (Python callers)."""
    return run_task(argv, "modelnet40", callbacks)


def main_seg(argv: Sequence[str] | None = None, *, callbacks: Sequence[Any] = ()) -> int:
    """``pointea-seg``: ShapeNetPart part segmentation."""
    return run_task(argv, "shapenetpart", callbacks)


if __name__ == "__main__":  # python -m pointea.cli.train (torchrun)
    sys.exit(main())
