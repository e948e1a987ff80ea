"""The command line of ``pointea-predict``: its parser, and the checks of its flags
that come before any model runs (:func:`usage_problem`) and once the checkpoint's kind
of model is known (:func:`kind_problem`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..files import safe_name
from .reporting import PROG

__all__ = ["EXAMPLES", "GRID_FLAGS", "build_parser", "explicit_outputs", "flag_value",
           "kind_problem", "usage_problem"]  # fmt: skip

EXAMPLES = """\
examples:
  pointea-predict runs/demo/checkpoints/best.pt chair.obj scan.ply part.xyz
      classify three files (meshes are sampled on their surface); top-5 classes each
  pointea-predict model_dir/ mug.off --category Mug --out-dir predictions/
      segment a mug: predictions/mug.ply (coloured by part) and predictions/mug.png
  pointea-predict best.pt data/ply_data_test0.h5:17 scans/ --json
      one HDF5 entry and every supported file under scans/, as one JSON document
  pointea-predict best.pt scans/ --html predictions.html
      one self-contained page: turn every prediction around, hover for class / part
  pointea-predict runs/demo-cls/checkpoints/best.pt --render-grid predictions.png
      predictions on the run's own test shapes, drawn as one image

scenes (a checkpoint of pointea-semseg):
  pointea-predict runs/demo-semseg/checkpoints/best.pt office.txt
      every point of a room: points per class, predictions/office.ply (class colours
      and a label property) and predictions/office.png (from above, in perspective)
  pointea-predict best.pt room.ply --output room_labels.txt --render room.png
      rows x y z r g b label; a render of colour and prediction (and errors, when the
      file has a label column or --truth names one label per point)
  pointea-predict best.pt rooms/ --html rooms.html --chunk-size 32768 --device cuda
      every scene under rooms/, one page (50,000 points shown per scene)

inputs: .ply .pcd .xyz .txt .pts (clouds), .off .obj .stl .ply (meshes, sampled
on the surface), FILE.h5:INDEX or FILE.h5#INDEX (one HDF5 entry; FILE.h5 alone:
every entry), or a folder (every supported file below it). Options may come
before or after the files.
scenes: .txt .xyz .pts .npy rows x y z r g b [label] (colours 0..255, or 0..1
floats), .ply with red green blue (a mesh's vertices), .pcd with rgb; metres,
z up (else --up). Files without colours are refused: the model reads them.
outputs: never written over an input or the checkpoint; an existing file that
pointea did not write is replaced only with --overwrite.
exit status: 0 ok, 1 some input failed, 2 bad usage or unusable checkpoint,
130 interrupted."""


def _size(text: str) -> int:
    from ..visualization.render import MAX_IMAGE_SIZE

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 8 <= value <= MAX_IMAGE_SIZE:
        raise argparse.ArgumentTypeError(
            f"{value} pixels: a panel side must be between 8 and {MAX_IMAGE_SIZE}"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``pointea-predict``."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Classify or segment point clouds, meshes and whole scenes with a trained "
        "pointea model.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES,
    )
    p.add_argument(
        "checkpoint",
        help="training checkpoint (.pt), save_pretrained folder, or PCT_Pytorch model.t7",
    )
    p.add_argument(
        "inputs", nargs="*", metavar="FILE", help="files, HDF5 entries or folders to predict"
    )
    p.add_argument(
        "--category",
        help="object category for segmentation (name such as Chair, "
        "or index 0..15); default: from the HDF5 entry's label "
        "or the ShapeNet synset folder",
    )
    p.add_argument(
        "--top-k", type=int, default=None, help="classifiers: classes to print (default 5)"
    )
    p.add_argument(
        "--num-points",
        type=int,
        default=None,
        help="points per cloud (default: the checkpoint's training value)",
    )
    p.add_argument(
        "--out-dir",
        type=Path,
        default=Path("predictions"),
        help="where segmentation writes NAME.ply and NAME.png (default predictions/)",
    )
    p.add_argument(
        "--png",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="render a PNG per segmented input (default on)",
    )
    p.add_argument(
        "--ply",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write a coloured PLY per segmented input (default on)",
    )
    p.add_argument(
        "--html",
        type=Path,
        metavar="HTML",
        help="write one self-contained interactive page with every input's prediction",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output files that pointea did not write (inputs and the "
        "checkpoint are never replaced; pointea's own earlier outputs always are)",
    )
    p.add_argument(
        "--size",
        type=_size,
        nargs=2,
        default=None,
        metavar=("W", "H"),
        help="size of each rendered panel, 8..8192 pixels (default 480 480; scenes 420 320)",
    )
    p.add_argument(
        "--up",
        choices=("x", "y", "z"),
        default=None,
        help="up axis of the inputs (default y for objects, for rendering; z for scenes, "
        "which are rotated to z up for the model)",
    )
    p.add_argument(
        "--show",
        action="store_true",
        help="also open an interactive window per input (needs a display)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument(
        "--estimate-normals",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="object models trained with normals: estimate them for inputs that have "
        "none (default on)",
    )
    p.add_argument(
        "--drop-nonfinite",
        action="store_true",
        help="drop points with NaN/inf coordinates instead of failing",
    )
    p.add_argument(
        "--colour-scale",
        choices=("auto", "1", "255"),
        default="auto",
        help="scale of the input files' colours: 0..1, 0..255, or auto (from the data type "
        "and range; a doubt warns, a scale that cannot be told fails; default auto)",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: auto)")
    p.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        metavar="N",
        help="points per chunk of the streamed pass over large clouds and scenes "
        "(external attention; memory grows with it; at least 64; default 65536 on a CPU, "
        "2^18-2^20 on CUDA by free memory)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of surface sampling / resampling")
    _add_scene_arguments(
        p.add_argument_group("scenes (a scene segmenter checkpoint, pointea-semseg)")
    )
    _add_grid_arguments(
        p.add_argument_group("prediction grid on dataset shapes (the demo's figure)")
    )
    return p


def _add_scene_arguments(scene: argparse._ArgumentGroup) -> None:
    scene.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="labelled points of the (single) scene: .ply (class colours, int label), "
        ".txt/.xyz (rows x y z r g b label) or .npy (labels); default --out-dir/NAME.ply",
    )
    scene.add_argument(
        "--render",
        type=Path,
        metavar="PNG",
        help="render of the (single) scene from above and in perspective; "
        "default --out-dir/NAME.png",
    )
    scene.add_argument(
        "--truth",
        type=Path,
        metavar="FILE",
        help="true class ids of the (single) scene, one per point (.npy, or text one per "
        "line): prints OA / mIoU and renders the errors (default: the file's label column)",
    )
    scene.add_argument(
        "--html-points",
        type=int,
        default=None,
        metavar="N",
        help="points shown per scene in --html (a seeded subsample; default 50000)",
    )
    scene.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar over the chunks (default: on a terminal, for scenes larger "
        "than --chunk-size)",
    )


def _add_grid_arguments(grid: argparse._ArgumentGroup) -> None:
    grid.add_argument(
        "--dataset-root",
        type=Path,
        help="folder holding the dataset archive (default: the training run's, "
        "read from a training checkpoint)",
    )
    grid.add_argument("--split", default=None, help="dataset split (default test)")
    grid.add_argument(
        "--dataset-format",
        default=None,
        help="hdf5 / resampled (ModelNet40), text / hdf5 (ShapeNetPart)",
    )
    grid.add_argument(
        "--render-grid",
        type=Path,
        metavar="PNG",
        help="render predictions on dataset shapes into one PNG",
    )
    grid.add_argument("--num-shapes", type=int, default=None, help="shapes in the grid (default 8)")


# flags of --render-grid, and the defaults they take with it
GRID_FLAGS = {"--dataset-root": None, "--dataset-format": None, "--split": "test",
               "--num-shapes": 8}  # fmt: skip


def flag_value(args: argparse.Namespace, flag: str) -> Any:
    return getattr(args, flag.lstrip("-").replace("-", "_"))


def explicit_outputs(args: argparse.Namespace) -> list[tuple[str, Path]]:
    """The output files named by flags, ``[(flag, path)]``."""
    flags = ("--output", "--render", "--html", "--render-grid")
    return [(f, flag_value(args, f)) for f in flags if flag_value(args, f) is not None]


def usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the flags whatever the checkpoint (``None``: nothing)."""
    if args.num_shapes is not None and args.num_shapes < 1:
        return "--num-shapes must be at least 1"
    if args.render_grid is None:
        given = [f for f in GRID_FLAGS if flag_value(args, f) is not None]
        if given:
            return (
                f"{', '.join(given)}: only with --render-grid (they choose the dataset "
                "shapes it draws)"
            )
    seen: dict[str, str] = {}
    for flag, path in explicit_outputs(args):
        key = os.path.abspath(path)
        if key in seen:
            return f"{seen[key]} and {flag} name the same file {safe_name(path)}"
        seen[key] = flag
    return None


def kind_problem(args: argparse.Namespace, predictor: Any) -> str | None:
    """A flag given that does not apply to the checkpoint's kind of model (``None``:
    none), from what the predictor says it does."""
    model = f"{safe_name(args.checkpoint)} is a {predictor.kind} model"
    if args.top_k is not None and not predictor.ranks_classes:
        return f"--top-k: only for a classifier (it ranks classes); {model}"
    if args.estimate_normals is not None and predictor.scenes:
        flag = "--estimate-normals" if args.estimate_normals else "--no-estimate-normals"
        return f"{flag}: not for a scene checkpoint (a scene model reads colours, not normals)"
    if args.html_points is not None and not predictor.scenes:
        return f"--html-points: only for a scene checkpoint (objects are shown whole); {model}"
    scene_flags = [f for f, v in (("--output", args.output), ("--render", args.render),
                                  ("--truth", args.truth)) if v is not None]  # fmt: skip
    if scene_flags and not predictor.scenes:
        return f"{', '.join(scene_flags)}: only for a scene checkpoint (pointea-semseg); {model}"
    return None
