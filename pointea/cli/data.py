"""``pointea-data``: generate the offline stand-ins, download archives, check a data folder.

Examples::

    pointea-data synthetic --task modelnet40 --root data/synthetic
    pointea-data download modelnet40 --root data/
    pointea-data check data/
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import PointeaError
from .reporting import emit

__all__ = ["main"]


def _cmd_synthetic(args: argparse.Namespace) -> int:
    from ..datasets.synthetic import (
        ensure_synthetic,
        read_marker,
        synthetic_defaults,
        synthetic_folder,
    )

    # the size flags this stand-in's writer takes (the others do not apply to it)
    sizes = {
        k: getattr(args, k)
        for k in synthetic_defaults(args.task)
        if getattr(args, k, None) is not None
    }
    root = ensure_synthetic(args.task, root=args.root, seed=args.seed, **sizes)
    folder = root / synthetic_folder(args.task)
    marker = read_marker(folder) or {}
    emit(f"synthetic {args.task} data ready under {root} (seed {marker.get('seed', args.seed)})")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from ..datasets.download import ARCHIVES, download_archive, resolve_archive_key

    key = resolve_archive_key(args.archive)
    folder = download_archive(
        key, args.root, progress=not args.no_progress, keep_archive=args.keep_archive
    )
    emit(f"{ARCHIVES[key].filename}: ready at {folder}")
    return 0


def _summarise_cls(name: str, out: dict[str, Any]) -> str:
    labels = out["labels"]
    sizes = [p.shape[0] for p in out["pos"]]
    hist = Counter(int(v) for v in labels)
    return (
        f"  {name:<9} {len(sizes):>6} shapes, {min(sizes)}-{max(sizes)} points, "
        f"{len(hist)}/{len(out['class_names'])} classes present "
        f"(smallest class {min(hist.values())} shapes)"
    )


def _summarise_seg(name: str, shapes: list[dict[str, Any]]) -> str:
    from ..datasets.shapenetpart import SHAPENET_CATEGORIES

    if not shapes:
        return f"  {name:<9} 0 shapes"
    sizes = [s["pos"].shape[0] for s in shapes]
    names = list(SHAPENET_CATEGORIES)
    cats = Counter(names[s["category"]] for s in shapes)
    listing = ", ".join(f"{c} {n}" for c, n in sorted(cats.items()))
    return f"  {name:<9} {len(sizes):>6} shapes, {min(sizes)}-{max(sizes)} points; {listing}"


def _check_one(key: str, folder: Path) -> list[str]:
    from ..datasets import modelnet40 as mn
    from ..datasets import shapenetpart as sp

    lines = []
    if key == "modelnet40":
        for split in ("train", "test"):
            lines.append(_summarise_cls(split, mn.read_hdf5_split(folder, split, False)))
    elif key == "modelnet40_resampled":
        for split in ("train", "test"):
            lines.append(_summarise_cls(split, mn.read_resampled_split(folder, split, False)))
    elif key == "shapenetpart":
        for split in ("train", "val", "test"):
            lines.append(_summarise_seg(split, sp.read_text_split(folder, split)))
    else:
        for split in ("train", "val", "test"):
            lines.append(_summarise_seg(split, sp.read_hdf5_split(folder, split)))
    return lines


def _cmd_check(args: argparse.Namespace) -> int:
    from ..datasets.download import ARCHIVES, find_archive

    root = Path(args.root).expanduser()
    if not root.is_dir():
        emit(f"error: {root}: no such folder", sys.stderr)
        return 2
    found = [(k, f) for k, info in ARCHIVES.items() if (f := find_archive(info, root))]
    from ..datasets.s3dis import FOLDER, s3dis_report

    s3dis = s3dis_report(root)  # areas, rooms, points per area, quirks met; None: absent
    if not found and s3dis is None:
        names = ", ".join([*(info.folder for info in ARCHIVES.values()), FOLDER])
        emit(f"error: {root}: none of the dataset folders found ({names})", sys.stderr)
        return 2
    status = 0
    if s3dis is not None:
        emit("\n".join(s3dis[0][:-1] if s3dis[1] else s3dis[0]))
        if s3dis[1]:
            emit(s3dis[0][-1], sys.stderr)
        status = s3dis[1]
    for key, folder in found:
        emit(f"{folder} [{key}]")
        try:
            for line in _check_one(key, folder):
                emit(line)
            emit("  ok")
        except PointeaError as exc:
            emit(f"  error: {exc}", sys.stderr)
            status = 1
    return status


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="pointea-data", description="Prepare and check pointea's datasets."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synthetic", help="write the offline stand-in datasets (no download)")
    p.add_argument(
        "--task",
        required=True,
        choices=["modelnet40", "shapenetpart"],
        help="which stand-in to write",
    )
    p.add_argument("--root", default="data/synthetic", help="output folder (default: %(default)s)")
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="generator seed: same seed, same files (default: the existing set's, else 0)",
    )
    p.add_argument("--points", type=int, default=None, help="points per shape (2048)")
    p.add_argument("--num-classes", type=int, default=None, help="classification: 2..12")
    p.add_argument(
        "--train-per-class",
        type=int,
        default=None,
        help="classification: training shapes per class (80)",
    )
    p.add_argument(
        "--test-per-class",
        type=int,
        default=None,
        help="classification: test shapes per class (25)",
    )
    p.add_argument(
        "--train-per-category",
        type=int,
        default=None,
        help="segmentation: training shapes per category (60)",
    )
    p.add_argument(
        "--val-per-category",
        type=int,
        default=None,
        help="segmentation: validation shapes per category (10)",
    )
    p.add_argument(
        "--test-per-category",
        type=int,
        default=None,
        help="segmentation: test shapes per category (20)",
    )
    p.set_defaults(func=_cmd_synthetic)

    p = sub.add_parser("download", help="fetch and extract a published archive (needs internet)")
    p.add_argument(
        "archive", help="modelnet40, modelnet40-resampled, shapenetpart, shapenetpart-hdf5"
    )
    p.add_argument("--root", default="data", help="folder to extract into (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--keep-archive", action="store_true", help="keep the .zip after extraction")
    p.set_defaults(func=_cmd_download)

    from ..datasets.download import ARCHIVES
    from ..datasets.s3dis import FOLDER

    folders = [f"{info.folder} ({key})" for key, info in ARCHIVES.items()]
    known = ", ".join([*folders, f"{FOLDER} (s3dis)"])
    p = sub.add_parser(
        "check",
        help="validate the dataset folders pointea knows under ROOT and summarise them",
        description=f"Validate and summarise the dataset folders pointea knows under ROOT: "
        f"{known}. Other folders are not looked at.",
    )
    p.add_argument("root", help="a data folder (e.g. data/) or an archive folder itself")
    p.set_defaults(func=_cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``pointea-data``; returns the exit status."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except PointeaError as exc:
        emit(f"error: {exc}", sys.stderr)
        return 1
    except KeyboardInterrupt:
        emit("interrupted", sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
