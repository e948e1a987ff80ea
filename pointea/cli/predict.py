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
did not write unless ``--overwrite`` is given (:func:`pointea.outputs.check_output`);
names are printed with control characters escaped (:func:`pointea.files.safe_name`).
A flag that does not apply to the checkpoint's kind of model is refused with one line; Ctrl-C
stops with one line and exit status 130.
Exit status: 0 all inputs done, 1 some input failed, 2 bad usage or unusable checkpoint.
This module only parses arguments, writes the requested files and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import DataError, InputError, OutputExistsError, PointeaError
from ..files import safe_name
from ..outputs import check_output
from .predict_args import (
    GRID_FLAGS,
    build_parser,
    explicit_outputs,
    flag_value,
    kind_problem,
    usage_problem,
)
from .reporting import (
    PROG,
    emit,
    record_failure,
    report_error,
    report_warning,
    show_window,
    unique_stem,
)

__all__ = ["build_parser", "main"]


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
    :func:`pointea.outputs.check_output`)."""
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
        value = flag_value(args, flag)
        if value is not None and value < 1:
            parser.error(f"{flag} must be at least 1")
    from ..models.chunks import check_chunk_size

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
    defaults = {"--top-k": 5, "--html-points": 50_000, **GRID_FLAGS}
    for flag, default in defaults.items():
        if flag_value(args, flag) is None:
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
    for flag, path in explicit_outputs(args):  # refused before any model runs
        try:
            check_output(path, inputs=protected, overwrite=args.overwrite)
        except OutputExistsError as exc:
            report_error(f"{flag} {exc}")
            return 2
    if predictor.scenes:
        results, figures, failed = predict_scenes(args, predictor, specs, protected)
    else:
        results, figures, failed = _predict_objects(args, predictor, category, specs, protected)

    outputs, extra_failed = _write_pages(args, predictor, figures)
    failed += extra_failed
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


def _write_pages(args: argparse.Namespace, predictor: Any, figures: list) -> tuple[dict, int]:
    """The ``--html`` page and the ``--render-grid`` image: ``({name: path}, failures)``."""
    outputs: dict[str, str] = {}
    failed = 0
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
    return outputs, failed


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
