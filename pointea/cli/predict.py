"""``pointea-predict``: classify or segment your own point clouds, meshes and scenes.

Every input (a file, an HDF5 entry, or every supported file in a folder) is read with
:mod:`pointea.io` and predicted by :class:`pointea.inference.Predictor` (normalised and
resampled as in training). Classification prints the top-k classes; segmentation writes
a coloured PLY (every point of the input labelled) and a depth-shaded PNG per input:
ground truth, prediction and errors side by side when the file carries part labels,
else the prediction with a legend of part names. ``--html`` writes one self-contained
page (rotate, zoom, hover for the part or class) with every input's prediction.

With a scene checkpoint (``pct_semseg*``, trained by ``pointea-semseg``) every input is
a whole scene with colours (:func:`pointea.inference.scene_files.read_scene`), segmented
every point in one exact pass: a per-class point count is printed, and the labelled
points (``--output`` or ``--out-dir``/NAME.ply) and a render from above and in
perspective (``--render`` or ``--out-dir``/NAME.png) are written; with the truth (a
label column, or ``--truth``) OA / mIoU are printed and the render shows the errors.

``--render-grid`` draws predictions on dataset shapes into one PNG (the demo's figure);
with a training checkpoint it rebuilds the run's own evaluation split, no flags needed.

A bad input gets one line on stderr naming it, and the others are still processed.
No output is written over an input or the checkpoint, nor over an existing file pointea
did not write unless ``--overwrite`` is given (:func:`pointea.files.check_output`);
names are printed with control characters escaped (:func:`pointea.files.safe_name`).
A flag that does not apply to the checkpoint's kind of model is refused with one line; Ctrl-C
stops with one line and exit status 130.
Exit status: 0 all inputs done, 1 some input failed, 2 bad usage or unusable checkpoint.
This module only parses arguments, writes the requested files and prints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import DataError, InputError, OutputExistsError, PointeaError
from ..files import check_output, safe_name
from .reporting import (
    PROG,
    emit,
    record_failure,
    report_error,
    report_warning,
    show_window,
    unique_stem,
)

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
    scene = p.add_argument_group("scenes (a scene segmenter checkpoint, pointea-semseg)")
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
    grid = p.add_argument_group("prediction grid on dataset shapes (the demo's figure)")
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
    return p


def _object_outputs(args: argparse.Namespace, spec: Any, used: set) -> dict[str, Path]:
    """Where one segmented object's PLY and PNG go (``--out-dir``/NAME.ply, .png)."""
    stem = unique_stem(spec, used)
    out = {}
    if args.ply:
        out["ply"] = args.out_dir / f"{stem}.ply"
    if args.png:
        out["png"] = args.out_dir / f"{stem}.png"
    return out


def _check_outputs(args: argparse.Namespace, paths: dict[str, Path], protected: list) -> None:
    """Raise :class:`OutputExistsError` unless every path may be written (see
    :func:`pointea.files.check_output`)."""
    for path in paths.values():
        check_output(path, inputs=protected, overwrite=args.overwrite)


def _figure(args: argparse.Namespace, item: Any, res: dict) -> Any:
    """The interactive view of one prediction, for ``--html``."""
    from ..io import normalize_unit_sphere

    norm = normalize_unit_sphere(item.cloud.points)[0]
    return item.result.figure(norm, Path(str(item.source)).name, args.up, res)


def _run_name(checkpoint: str | Path) -> str:
    """``runs/demo/checkpoints/best.pt`` -> ``demo (best.pt)``; other paths: their name."""
    path = Path(checkpoint)
    if path.parent.name == "checkpoints" and path.parent.parent.name:
        return f"{path.parent.parent.name} ({path.name})"
    return path.name


def _print_human(item: Any, res: dict) -> None:
    for line in item.result.lines(res["input"], res):
        emit(line)
    for key in ("ply", "png"):
        if key in res:
            emit(f"  wrote {safe_name(res[key])}")


def _predict_objects(
    args: argparse.Namespace,
    predictor: Any,
    category: int | None,
    specs: list,
    protected: list,
) -> tuple[list, list, int]:
    """Every object input named on the command line: ``(results, html figures, failures)``."""
    results: list[dict] = []
    figures: list[Any] = []
    used_stems: set[str] = set()
    failed = 0
    for spec in specs:
        if isinstance(spec, DataError):
            failed += 1
            report_error(str(spec))
            results.append({"input": str(spec).split(": ", 1)[0], "ok": False, "error": str(spec)})
            continue
        try:
            paths: dict[str, Path] = {}
            if predictor.labels_points:  # written per input: checked before the model runs
                paths = _object_outputs(args, spec, used_stems)
                _check_outputs(args, paths, protected)
            item = predictor.predict_file(
                spec, category=category, drop_nonfinite=args.drop_nonfinite
            )
            res = item.to_dict(args.top_k)
            if paths:
                title = Path(str(spec)).name
                res.update(item.result.write(paths, item.cloud.points, item.truth, res,
                                             title=title, size=args.size, up=args.up))  # fmt: skip
            if args.html is not None:
                figures.append(_figure(args, item, res))
        except (PointeaError, ValueError, OSError) as exc:
            failed += 1
            record_failure(results, spec, exc)
            continue
        results.append(res)
        if args.show:
            show_window(item.cloud.points, item.result.colors(), safe_name(str(spec)))
        if not args.json:
            _print_human(item, res)
    return results, figures, failed


# flags of --render-grid, and the defaults they take with it
_GRID_FLAGS = {"--dataset-root": None, "--dataset-format": None, "--split": "test",
               "--num-shapes": 8}  # fmt: skip


def _flag_value(args: argparse.Namespace, flag: str) -> Any:
    return getattr(args, flag.lstrip("-").replace("-", "_"))


def _explicit_outputs(args: argparse.Namespace) -> list[tuple[str, Path]]:
    """The output files named by flags, ``[(flag, path)]``."""
    flags = ("--output", "--render", "--html", "--render-grid")
    return [(f, _flag_value(args, f)) for f in flags if _flag_value(args, f) is not None]


def usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the flags whatever the checkpoint (``None``: nothing)."""
    if args.num_shapes is not None and args.num_shapes < 1:
        return "--num-shapes must be at least 1"
    if args.render_grid is None:
        given = [f for f in _GRID_FLAGS if _flag_value(args, f) is not None]
        if given:
            return (
                f"{', '.join(given)}: only with --render-grid (they choose the dataset "
                "shapes it draws)"
            )
    seen: dict[str, str] = {}
    for flag, path in _explicit_outputs(args):
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


def _protected(args: argparse.Namespace, specs: list) -> list[Path]:
    """The files this run reads, which no output may replace."""
    paths = {Path(str(args.checkpoint))}
    if args.truth is not None:
        paths.add(args.truth)
    for spec in specs:
        if not isinstance(spec, DataError):
            paths.add(Path(str(getattr(spec, "path", spec))))
    return sorted(paths)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``pointea-predict``; returns the exit status (130 on Ctrl-C)."""
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    if not args.inputs and args.render_grid is None:
        parser.error("name at least one FILE, or --render-grid PNG")
    for flag in ("--top-k", "--num-points"):
        value = _flag_value(args, flag)
        if value is not None and value < 1:
            parser.error(f"{flag} must be at least 1")
    from ..models.streaming import check_chunk_size

    try:
        if args.chunk_size is not None:
            check_chunk_size(args.chunk_size, "--chunk-size")
    except InputError as err:
        parser.error(str(err))
    try:
        return _run(args)
    except KeyboardInterrupt:
        emit(f"\n{PROG}: interrupted", sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    problem = usage_problem(args)
    if problem:
        report_error(problem)
        return 2

    from ..datasets.shapenetpart import category_index
    from ..inference import Predictor

    try:
        category = None if args.category is None else category_index(args.category)
        predictor = Predictor.from_pretrained(
            args.checkpoint,
            device=args.device,
            num_points=args.num_points,
            seed=args.seed,
            estimate_normals=args.estimate_normals is not False,
            chunk_size=args.chunk_size,
            on_warning=report_warning,
            colour_scale=args.colour_scale,
        )
    except (PointeaError, OSError) as exc:
        report_error(str(exc))
        return 2
    problem = kind_problem(args, predictor)
    if problem:
        report_error(problem)
        return 2
    defaults = {"--top-k": 5, "--html-points": 50_000, **_GRID_FLAGS}
    for flag, default in defaults.items():
        if _flag_value(args, flag) is None:
            setattr(args, flag.lstrip("-").replace("-", "_"), default)

    t0 = time.perf_counter()
    if predictor.scenes:
        from ..inference.scene_files import expand_scene_inputs
        from .predict_scenes import predict_scenes, scene_usage

        problem = scene_usage(args)
        if problem:
            report_error(problem)
            return 2
        args.up, args.size = args.up or "z", args.size or (420, 320)
        specs: list = list(expand_scene_inputs(args.inputs))
    else:
        from ..io import expand_inputs

        args.up, args.size = args.up or "y", args.size or (480, 480)
        specs = list(expand_inputs(args.inputs))
    protected = _protected(args, specs)
    for flag, path in _explicit_outputs(args):  # refused before any model runs
        try:
            check_output(path, inputs=protected, overwrite=args.overwrite)
        except OutputExistsError as exc:
            report_error(f"{flag} {exc}")
            return 2
    if predictor.scenes:
        results, figures, failed = predict_scenes(args, predictor, specs, protected)
    else:
        results, figures, failed = _predict_objects(args, predictor, category, specs, protected)

    outputs: dict[str, str] = {}
    if args.html is not None and figures:
        from ..visualization import write_html

        try:
            page = write_html(args.html, figures, title=f"{_run_name(args.checkpoint)}")
            outputs["html"] = str(page)
        except (PointeaError, OSError) as exc:
            report_error(f"--html {args.html}: {getattr(exc, 'strerror', None) or exc}")
            failed += 1
    if args.render_grid is not None:
        from ..inference import grid_dataset, render_prediction_grid

        try:
            ds, names, n = grid_dataset(
                predictor,
                args.split,
                root=args.dataset_root,
                data_format=args.dataset_format,
                source=str(args.checkpoint),
            )
            render_prediction_grid(
                predictor,
                ds,
                args.render_grid,
                num_shapes=args.num_shapes,
                class_names=names,
                num_points=n,
                seed=args.seed,
                up=args.up,
                title=f"{_run_name(args.checkpoint)} on {args.split}",
            )
            outputs["render_grid"] = str(args.render_grid)
        except (PointeaError, OSError, ValueError) as exc:
            report_error(f"--render-grid: {exc}")
            failed += 1
    if not args.json:
        for path in outputs.values():
            emit(f"wrote {safe_name(path)}")

    if args.json:
        doc = {
            "checkpoint": str(args.checkpoint),
            "kind": predictor.kind,
            "task": predictor.task,
            "num_points": None if predictor.scenes else predictor.num_points,
            "results": results,
            "failed": failed,
            "seconds": round(time.perf_counter() - t0, 3),
            **outputs,
        }
        emit(json.dumps(doc, indent=2))
    elif failed:
        total = len(results) + (args.render_grid is not None) + (args.html is not None)
        emit(f"{failed} of {total} failed", sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = [
    "main",
    "build_parser",
    "kind_problem",
    "usage_problem",
    "emit",
    "report_error",
    "report_warning",
    "record_failure",
    "show_window",
    "unique_stem",
]
