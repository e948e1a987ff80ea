"""``pointea-convert``: turn other projects' checkpoints into pointea model folders.

    pointea-convert pct-pytorch model.t7 models/pct-modelnet40

reads a PCT_Pytorch classifier checkpoint (``weights_only=True``), builds pointea's
self-attention classifier with its weights, and writes a folder that ``pointea-eval``,
``pointea-predict``, the notebooks and ``pointea.models.load_model`` accept. A folder
holding files of the same names that pointea did not write (a ``README.md`` of your own)
is refused unless ``--overwrite``; the checkpoint itself is never replaced.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import PointeaError
from ..files import safe_name
from ..models.pct_pytorch import MODELNET40_CLASSES
from ..outputs import check_output

PROG = "pointea-convert"
# what save_pretrained writes into the folder
_FOLDER_FILES = ("model.safetensors", "config.json", "README.md")


def _pretrained_folder(folder: Path) -> bool:
    """Whether ``folder`` is a model folder pointea wrote (its config.json says so)."""
    from ..models.hub import CONFIG_NAME, PRETRAINED_FORMAT

    try:
        config = json.loads((folder / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("format") == PRETRAINED_FORMAT


def check_folder(folder: Path, inputs: list[Path], overwrite: bool) -> None:
    """Refuse to write the model folder over an input, or over files of the same names
    in a folder pointea did not write, unless ``overwrite``."""
    own = folder.is_dir() and _pretrained_folder(folder)
    for name in _FOLDER_FILES:
        check_output(folder / name, inputs=inputs, overwrite=overwrite or own)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Convert an external checkpoint into a pointea model folder.",
    )
    sub = parser.add_subparsers(dest="source", required=True)
    pct = sub.add_parser(
        "pct-pytorch",
        help="a PCT_Pytorch classifier checkpoint (model.t7, DataParallel 'module.' keys)",
    )
    pct.add_argument("checkpoint", type=Path, help="the PCT_Pytorch model.t7 file")
    pct.add_argument("output", type=Path, help="folder to write (model.safetensors, config.json)")
    pct.add_argument(
        "--class-names",
        type=Path,
        default=None,
        help="a shape_names.txt (one class a line); default: ModelNet40's 40 names",
    )
    pct.add_argument(
        "--overwrite",
        action="store_true",
        help="replace model.safetensors, config.json and README.md in a folder pointea did "
        "not write (a pointea model folder is always replaced; the checkpoint never)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ..models import from_pct_pytorch, save_pretrained

    try:
        if args.output.exists() and not args.output.is_dir():
            raise PointeaError(
                f"{safe_name(args.output)}: exists and is not a folder; name a new or "
                "existing folder"
            )
        inputs = [args.checkpoint] + ([args.class_names] if args.class_names else [])
        check_folder(args.output, inputs, args.overwrite)
        if args.class_names is not None:
            try:
                names = [n.strip() for n in args.class_names.read_text().splitlines() if n.strip()]
            except OSError as exc:
                raise PointeaError(
                    f"{safe_name(args.class_names)}: cannot read class names: {exc}"
                ) from exc
        else:
            names = list(MODELNET40_CLASSES)
        model = from_pct_pytorch(args.checkpoint, class_names=names)
        save_pretrained(
            model,
            args.output,
            dataset="ModelNet40 (PCT_Pytorch checkpoint)",
            num_points=1024,
            command=safe_name(f"{PROG} pct-pytorch {args.checkpoint} {args.output}"),
        )
    except PointeaError as exc:
        print(f"{PROG}: error: {safe_name(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # an unwritable folder, a full disk
        where = exc.filename or args.output
        print(
            f"{PROG}: error: {safe_name(where)}: cannot write the model folder: "
            f"{exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {safe_name(args.output)} ({params:,} parameters, {len(names)} classes)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
