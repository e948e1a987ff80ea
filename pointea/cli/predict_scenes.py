"""``pointea-predict`` with a scene checkpoint: every input is a whole scene with colours.

Each scene is read by :func:`pointea.inference.scene_files.read_scene` and segmented,
every point in one exact pass, by :meth:`pointea.inference.Predictor.predict_scene_file`.
Printed: the points per class (and OA / mAcc / mIoU when the file has a label column or
``--truth`` names one). Written: the labelled points (``--output``, else
``--out-dir``/NAME.ply) and a render from above and in perspective (``--render``, else
``--out-dir``/NAME.png), each checked first by :func:`pointea.outputs.check_output`;
``--html`` pages are assembled by :mod:`.predict`.
This module only reads flags, writes the requested files and prints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import DataError, PointeaError
from ..files import safe_name
from ..outputs import check_output
from .reporting import emit, record_failure, report_error, report_warning, show_window, unique_stem

__all__ = ["predict_scenes", "scene_outputs", "scene_usage", "write_scene", "print_scene"]


def scene_usage(args: argparse.Namespace) -> str | None:
    """What is wrong with the flags for a scene checkpoint (``None``: nothing)."""
    from ..inference.scene_files import LABEL_EXTENSIONS

    for flag, value, why in (
        ("--category", args.category, "a scene segmenter takes no object category"),
        ("--render-grid", args.render_grid, "it draws dataset shapes, not scenes"),
        ("--num-points", args.num_points, "scenes are segmented whole, every point"),
    ):
        if value is not None:
            return f"{flag}: not for a scene checkpoint ({why})"
    single = [f for f, v in (("--output", args.output), ("--render", args.render),
                             ("--truth", args.truth)) if v is not None]  # fmt: skip
    if single and (len(args.inputs) != 1 or Path(args.inputs[0]).is_dir()):
        return f"{', '.join(single)}: name exactly one scene file (use --out-dir for several)"
    if args.output is not None and args.output.suffix.lower() not in LABEL_EXTENSIONS:
        return f"--output {safe_name(args.output)}: use one of {' '.join(LABEL_EXTENSIONS)}"
    if args.html_points < 1:
        return "--html-points must be at least 1"
    return None


def scene_outputs(args: argparse.Namespace, path: Path, used: set) -> dict[str, Path]:
    """Where one scene's labelled points (``"output"``) and render (``"png"``) go:
    ``--output`` / ``--render``, else ``--out-dir``/NAME.ply and NAME.png."""
    stem = unique_stem(path, used)
    out = {}
    if args.output is not None or args.ply:
        out["output"] = args.output or args.out_dir / f"{stem}.ply"
    if args.render is not None or args.png:
        out["png"] = args.render or args.out_dir / f"{stem}.png"
    return out


def write_scene(
    args: argparse.Namespace, path: Path, item: Any, res: dict, outputs: dict[str, Path]
) -> None:
    """The labelled points and the render of one segmented scene (recorded in ``res``)."""
    from ..inference.scene_files import write_scene_labels
    from ..inference.scenes import render_scene, scene_class_colors
    from ..visualization import save_png

    cloud, seg = item.cloud, item.result
    if "output" in outputs:
        colors = scene_class_colors(seg.num_classes)
        res["output"] = str(write_scene_labels(outputs["output"], cloud, seg.labels, colors))
    png = outputs.get("png")
    if png is not None:
        w, h = args.size
        title = f"{path.name}: {len(seg.labels):,} points"
        if item.truth is not None:
            title += f", OA {res['overall_accuracy']:.1%}, mIoU {res['mean_iou']:.1%}"
        img = render_scene(
            cloud.points,
            cloud.colors,
            seg.labels,
            seg.class_names,
            truth=item.truth,
            title=title,
            up=args.up,
            width=w,
            height=h,
        )
        res["png"] = str(save_png(png, img))


def print_scene(res: dict) -> None:
    total = max(res["points_read"], 1)
    name = safe_name(res["input"])
    emit(f"{name}: {res['points_read']:,} points, segmented in {res['seconds']:.1f} s")
    for name, count in res["class_counts"].items():
        emit(f"  {safe_name(name):<12s} {count:>12,d} {100 * count / total:6.1f} %")
    if "mean_iou" in res:
        emit(
            f"  against the truth: OA {res['overall_accuracy']:.1%}, "
            f"mAcc {res['mean_class_accuracy']:.1%}, mIoU {res['mean_iou']:.1%}"
        )
    for key in ("output", "png"):
        if key in res:
            emit(f"  wrote {safe_name(res[key])}")


def predict_scenes(
    args: argparse.Namespace, predictor: Any, paths: list, protected: list
) -> tuple[list, list, int]:
    """Every scene of ``paths`` (expanded inputs, or the :class:`DataError` of one that
    could not be expanded): ``(results, html figures, failures)``. No output replaces a
    file of ``protected`` (see :func:`pointea.outputs.check_output`)."""
    import warnings

    from ..inference.scenes import scene_class_colors, scene_figure, to_z_up

    results: list[dict] = []
    figures: list[Any] = []
    used: set[str] = set()
    failed = 0
    # a bar on a terminal for scenes of more than one chunk; never into a log file
    progress = args.progress if args.progress is not None else (
        None if sys.stderr.isatty() else False
    )  # fmt: skip
    for path in paths:
        if isinstance(path, DataError):
            failed += 1
            report_error(str(path))
            results.append({"input": str(path).split(": ", 1)[0], "ok": False, "error": str(path)})
            continue
        try:
            outputs = scene_outputs(args, path, used)
            for out in outputs.values():  # before the model runs
                check_output(out, inputs=protected, overwrite=args.overwrite)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    item = predictor.predict_scene_file(
                        path,
                        drop_nonfinite=args.drop_nonfinite,
                        up=args.up,
                        progress=progress,
                        truth=args.truth,
                    )
                finally:
                    for w in caught:
                        report_warning(str(w.message))
            res = item.to_dict()
            write_scene(args, path, item, res, outputs)
            if args.html is not None:
                figures.append(
                    scene_figure(
                        item.cloud.points,
                        item.result.labels,
                        item.result.class_names,
                        title=path.name,
                        up=args.up,
                        max_points=args.html_points,
                        seed=args.seed,
                    )
                )
        except (PointeaError, ValueError, OSError) as exc:
            failed += 1
            record_failure(results, path, exc)
            continue
        results.append(res)
        if args.show:
            seg = item.result
            cols = scene_class_colors(seg.num_classes)[seg.labels]
            show_window(to_z_up(item.cloud.points, args.up), cols, safe_name(path))
        if not args.json:
            print_scene(res)
    return results, figures, failed
