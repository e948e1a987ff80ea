"""``pointea-predict``: classify or segment your own point clouds and meshes.

Examples::

    pointea-predict runs/demo/checkpoints/best.pt chair.obj scan.ply part.xyz
    pointea-predict model_dir/ mug.off --category Mug --out-dir predictions/
    pointea-predict best.pt data/ply_data_test0.h5:17 scans/ --json
    pointea-predict runs/demo-cls/checkpoints/best.pt --render-grid predictions.png
    pointea-predict best.pt --dataset-root data --split test --render-grid grid.png

Every input (a file, an HDF5 entry, or every supported file in a folder) is read with
:mod:`pointea.io` (meshes are sampled on their surface), then normalised as in training
(centre + unit sphere) and resampled to the training number of points; models trained
with normals get them from the file, the mesh faces, or a kNN estimate. Classification
prints the top-k classes; segmentation writes a coloured PLY (every point of the input
labelled, through its nearest predicted point) and a PNG per input: ground truth,
prediction and errors side by side when the file carries part labels (ShapeNetPart text
rows, HDF5 ``pid``), else the prediction with a legend of part names.

``--render-grid`` draws predictions on dataset shapes into one PNG (the demo's figure);
with a training checkpoint it rebuilds the run's own evaluation split, no flags needed.

A bad input (missing, unreadable, empty, unsupported, a mesh without faces, NaN
coordinates) gets one line on stderr naming it, and the others are still processed.
Exit status: 0 all inputs done, 1 some input failed, 2 bad usage or unusable checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.shapenetpart import category_index
from ..errors import DataError, InputError, PointeaError

PROG = "pointea-predict"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Classify or segment point clouds / meshes with a trained pointea model.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "inputs: .ply .pcd .xyz .txt .pts (clouds), .off .obj .stl .ply (meshes, sampled\n"
            "on the surface), FILE.h5:INDEX or FILE.h5#INDEX (one HDF5 entry; FILE.h5 alone:\n"
            "every entry), or a folder (every supported file below it).\n"
            "exit status: 0 ok, 1 some input failed, 2 bad usage or unusable checkpoint."
        ),
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
    p.add_argument("--top-k", type=int, default=5, help="classes to print (default 5)")
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
        "--size",
        type=int,
        nargs=2,
        default=(480, 480),
        metavar=("W", "H"),
        help="size of each rendered panel (default 480 480)",
    )
    p.add_argument(
        "--up",
        choices=("x", "y", "z"),
        default="y",
        help="up axis of the inputs for rendering (default y)",
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
        default=True,
        help="for models trained with normals: estimate them for inputs that have "
        "none (default on)",
    )
    p.add_argument(
        "--drop-nonfinite",
        action="store_true",
        help="drop points with NaN/inf coordinates instead of failing",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: auto)")
    p.add_argument("--seed", type=int, default=0, help="seed of surface sampling / resampling")
    grid = p.add_argument_group("prediction grid on dataset shapes (the demo's figure)")
    grid.add_argument(
        "--dataset-root",
        type=Path,
        help="folder holding the dataset archive (default: the training run's, "
        "read from a training checkpoint)",
    )
    grid.add_argument("--split", default="test", help="dataset split (default test)")
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
    grid.add_argument("--num-shapes", type=int, default=8, help="shapes in the grid (default 8)")
    return p


def _device(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"--device: {exc}") from exc


def _err(msg: str) -> None:
    print(f"{PROG}: error: {msg}", file=sys.stderr, flush=True)


class _Predictor:
    """Holds the model and the settings; predicts one input at a time."""

    def __init__(self, args: argparse.Namespace, model: Any, info: dict, device: Any) -> None:
        self.args = args
        self.model = model
        self.info = info
        self.device = device
        self.task = info.get("task", "classification")
        default_n = 1024 if self.task == "classification" else 2048
        self.num_points = int(args.num_points or info.get("num_points") or default_n)
        self.needs_normals = int(getattr(model, "hparams", {}).get("in_channels", 3)) == 6
        self.class_names = info.get("class_names") or getattr(model, "class_names", None)
        self.category = None if args.category is None else category_index(args.category)
        self.used_names: set[str] = set()
        self.warned_normals = False

    # ----------------------------------------------------------------------------------
    def run(self, spec: Any) -> dict:
        from .. import io

        cloud = io.load_points(
            spec, self.num_points, seed=self.args.seed, drop_nonfinite=self.args.drop_nonfinite
        )
        pos, idx = io.prepare_points(cloud.points, self.num_points, seed=self.args.seed)
        x = None
        if self.needs_normals:
            if cloud.normals is not None:
                x = cloud.normals[idx].astype(np.float32)
            elif self.args.estimate_normals and len(cloud) >= 3:
                x = io.estimate_normals(pos).astype(np.float32)
                if not self.warned_normals:
                    print(
                        f"{PROG}: warning: the model reads normals; inputs without them get "
                        f"normals estimated from 16 neighbours (--no-estimate-normals to "
                        f"refuse such inputs)",
                        file=sys.stderr,
                    )
                    self.warned_normals = True
            else:
                raise DataError(
                    f"{spec}: the model reads normals (in_channels=6) but the file has none"
                )
        degenerate = bool(np.ptp(cloud.points, axis=0).max() == 0)
        if degenerate:
            print(
                f"{PROG}: warning: {spec}: all {len(cloud)} points are identical "
                f"(zero extent); the prediction is not meaningful",
                file=sys.stderr,
            )
        result: dict[str, Any] = {
            "input": str(spec),
            "ok": True,
            "points_read": len(cloud),
            "surface_sampled": bool(cloud.meta.get("surface_sampled")),
        }
        if self.task == "classification":
            result.update(self._classify(pos, x, cloud))
            if self.args.show:
                self._show(cloud.points, None, str(spec))
        else:
            result.update(self._segment(spec, cloud, pos, x, idx))
        return result

    def _forward(self, pos: np.ndarray, x: np.ndarray | None, category: int | None) -> Any:
        import torch

        t_pos = torch.from_numpy(pos).to(self.device)
        t_x = torch.from_numpy(x).to(self.device) if x is not None else None
        with torch.no_grad():
            if category is None:
                return self.model(t_pos, None, t_x)
            cat = torch.tensor([category], dtype=torch.long, device=self.device)
            return self.model(t_pos, cat, None, t_x)

    def _classify(self, pos: np.ndarray, x: np.ndarray | None, cloud: Any) -> dict:
        import torch

        logits = self._forward(pos, x, None).float().reshape(-1)
        prob = torch.softmax(logits, dim=0).cpu()
        k = max(1, min(self.args.top_k, prob.numel()))
        top_p, top_i = prob.topk(k)
        top = [
            {
                "index": int(i),
                "class": _name(self.class_names, int(i)),
                "probability": round(float(p), 6),
            }
            for p, i in zip(top_p, top_i, strict=True)
        ]
        out: dict[str, Any] = {"task": "classification", "top_k": top}
        if "label" in cloud.meta:
            true = int(cloud.meta["label"])
            out["label"] = {"index": true, "class": _name(self.class_names, true)}
            out["correct"] = top[0]["index"] == true
        return out

    def _segment(
        self, spec: Any, cloud: Any, pos: np.ndarray, x: np.ndarray | None, idx: np.ndarray
    ) -> dict:
        import torch

        from .. import viz
        from ..datasets.shapenetpart import CATEGORY_PARTS, PART_NAMES, SHAPENET_CATEGORIES
        from ..metrics import predict_parts, shape_ious

        names = list(SHAPENET_CATEGORIES)
        cat = self._category_for(spec, cloud, names)
        logits = self._forward(pos, x, cat)
        t_cat = torch.tensor([cat])
        pred_s = predict_parts(logits.cpu(), t_cat, CATEGORY_PARTS)  # (num_points,)
        # Label every input point with its nearest predicted point.
        pred = _propagate(cloud.points, idx, pred_s.numpy())
        counts = {PART_NAMES[p]: int((pred == p).sum()) for p in CATEGORY_PARTS[cat]}
        out: dict[str, Any] = {
            "task": "segmentation",
            "category": names[cat],
            "part_counts": counts,
        }
        truth = (
            cloud.labels if cloud.labels is not None and len(cloud.labels) == len(pred) else None
        )
        if truth is not None and not np.isin(truth, CATEGORY_PARTS[cat]).all():
            truth = None  # labels from another scheme: no metrics
        if truth is not None:
            iou = shape_ious(torch.from_numpy(pred), torch.from_numpy(truth), t_cat, CATEGORY_PARTS)
            out["accuracy"] = round(float((pred == truth).mean()), 6)
            out["shape_iou"] = round(float(iou[0]), 6)
        stem = self._unique_stem(spec)
        norm, _, _ = _normalized(cloud.points)
        if self.args.ply:
            path = viz.export_ply(
                self.args.out_dir / f"{stem}.ply", cloud.points, labels=pred, category=cat
            )
            out["ply"] = str(path)
        if self.args.png:
            w, h = self.args.size
            title = f"{Path(str(spec)).name}: {names[cat]}"
            if truth is not None:
                title += f", shape IoU {out['shape_iou']:.2f}"
                img = viz.render_comparison(
                    norm,
                    truth,
                    pred,
                    category=cat,
                    title=title,
                    width=w,
                    height=h,
                    up=self.args.up,
                    point_size=_point_size(len(pred)),
                )
            else:
                img = viz.render_labels(
                    norm,
                    pred,
                    category=cat,
                    title=f"{title} (prediction)",
                    width=w,
                    height=h,
                    up=self.args.up,
                    point_size=_point_size(len(pred)),
                )
            out["png"] = str(viz.save_png(self.args.out_dir / f"{stem}.png", img))
        if self.args.show:
            self._show(cloud.points, viz.part_colors(pred, cat), str(spec))
        return out

    def _show(self, points: np.ndarray, colors: np.ndarray | None, title: str) -> None:
        from .. import viz

        try:
            viz.show(points, colors, window_name=title)
        except (RuntimeError, ImportError) as exc:
            print(f"{PROG}: warning: --show: {exc}", file=sys.stderr)

    def _category_for(self, spec: Any, cloud: Any, names: list[str]) -> int:
        if self.category is not None:
            return self.category
        if (
            "label" in cloud.meta
            and cloud.labels is not None
            and 0 <= int(cloud.meta["label"]) < len(names)
        ):
            # A ShapeNetPart HDF5 entry ('pid' present): its 'label' is the category. In
            # ModelNet40 files (no 'pid') the label is a class, not a category.
            return int(cloud.meta["label"])
        from ..datasets.shapenetpart import SHAPENET_CATEGORIES

        parent = Path(str(getattr(spec, "path", spec))).parent.name
        synsets = list(SHAPENET_CATEGORIES.values())
        if parent in synsets:
            return synsets.index(parent)
        low = [n.lower() for n in names]
        if parent.lower() in low:
            return low.index(parent.lower())
        raise InputError(
            f"{spec}: the segmenter needs the object category: pass --category "
            f"(one of {', '.join(names)})"
        )

    def _unique_stem(self, spec: Any) -> str:
        path = Path(str(getattr(spec, "path", spec)))
        index = getattr(spec, "index", None)
        base = path.stem + (f"_{index}" if index is not None else "")
        stem, k = base, 1
        while stem in self.used_names:
            k += 1
            stem = f"{base}_{k}"
        self.used_names.add(stem)
        return stem


def _point_size(n: int) -> float:
    return 5.0 if n <= 4096 else 3.0 if n <= 20000 else 2.0


def _normalized(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    from ..io import normalize_unit_sphere

    return normalize_unit_sphere(points)


def _propagate(
    points: np.ndarray, idx: np.ndarray, labels: np.ndarray, chunk: int = 8192
) -> np.ndarray:
    """Give every point the label of its nearest sampled point (``points[idx]``)."""
    import torch

    if len(points) == len(idx) and np.array_equal(idx, np.arange(len(points))):
        return labels.astype(np.int64)
    pts = torch.from_numpy(np.asarray(_normalized(points)[0], np.float32))
    ref = pts[torch.from_numpy(np.asarray(idx))]
    out = np.empty(len(pts), dtype=np.int64)
    lab = np.asarray(labels, np.int64)
    for s in range(0, len(pts), chunk):
        d = torch.cdist(pts[s : s + chunk], ref)
        out[s : s + chunk] = lab[d.argmin(dim=1).numpy()]
    return out


def _name(names: Any, i: int) -> str:
    return str(names[i]) if names is not None and 0 <= i < len(names) else str(i)


def _grid_dataset(args: argparse.Namespace, info: dict) -> tuple[Any, Any, int | None]:
    """The split to draw from, prepared exactly as the run evaluated it when possible.

    Returns ``(dataset, class_names, num_points or None when the dataset already
    subsamples)``.
    """
    task = info.get("task", "classification")
    config = info.get("config") or {}
    if config.get("task"):
        # A training checkpoint: rebuild the run's own evaluation pipeline.
        from ..engine.config import read_saved_config
        from ..engine.trainer import build_split

        cfg = read_saved_config(dict(config), source=str(args.checkpoint)).resolved()
        if args.dataset_format:
            cfg.data_format = args.dataset_format
        ds = build_split(cfg, args.split, root=args.dataset_root, train=False)
        names = info.get("class_names") or getattr(ds, "class_names", None)
        return ds, (names if task == "classification" else None), None
    if args.dataset_root is None:
        raise InputError(
            "--render-grid: this checkpoint does not record its dataset; pass --dataset-root"
        )
    from ..transforms import NormalizeUnitSphere

    kw: dict[str, Any] = {"transform": NormalizeUnitSphere()}
    if args.dataset_format:
        kw["format"] = args.dataset_format
    if task == "classification":
        from ..datasets import ModelNet40

        ds = ModelNet40(args.dataset_root, args.split, **kw)
        names = info.get("class_names") or ds.class_names
        default_n = 1024
    else:
        from ..datasets import ShapeNetPart

        ds = ShapeNetPart(args.dataset_root, args.split, **kw)
        names = None
        default_n = 2048
    return ds, names, int(args.num_points or info.get("num_points") or default_n)


def _render_grid(args: argparse.Namespace, model: Any, info: dict, device: Any) -> str:
    from .. import viz

    ds, names, n = _grid_dataset(args, info)
    viz.render_prediction_grid(
        model,
        ds,
        args.render_grid,
        num_shapes=args.num_shapes,
        class_names=names,
        num_points=n,
        device=device,
        seed=args.seed,
        up=args.up,
        title=f"{_run_name(args.checkpoint)} on {args.split}",
    )
    return str(args.render_grid)


def _run_name(checkpoint: str | Path) -> str:
    """``runs/demo/checkpoints/best.pt`` -> ``demo (best.pt)``; other paths: their name."""
    path = Path(checkpoint)
    if path.parent.name == "checkpoints" and path.parent.parent.name:
        return f"{path.parent.parent.name} ({path.name})"
    return path.name


def _print_human(res: dict) -> None:
    if res["task"] == "classification":
        extra = ""
        if "label" in res:
            extra = f"  (true: {res['label']['class']}, {'right' if res['correct'] else 'wrong'})"
        print(f"{res['input']}{extra}")
        for rank, t in enumerate(res["top_k"], 1):
            print(f"  {rank}. {t['class']:<20s} {t['probability'] * 100:6.2f} %")
    else:
        metrics = ""
        if "shape_iou" in res:
            metrics = f"  accuracy {res['accuracy']:.3f}, shape IoU {res['shape_iou']:.3f}"
        print(f"{res['input']}: {res['category']}{metrics}")
        parts = ", ".join(f"{k} {v}" for k, v in res["part_counts"].items())
        print(f"  points per part: {parts}")
        for key in ("ply", "png"):
            if key in res:
                print(f"  wrote {res[key]}")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.inputs and args.render_grid is None:
        parser.error("name at least one FILE, or --render-grid PNG")
    if args.top_k < 1:
        parser.error("--top-k must be at least 1")
    if args.num_points is not None and args.num_points < 1:
        parser.error("--num-points must be at least 1")

    from ..io import expand_inputs
    from ..models import load_model

    try:
        device = _device(args.device)
        model, info = load_model(args.checkpoint, map_location="cpu")
        model = model.to(device).eval()
        predictor = _Predictor(args, model, info, device)
    except (PointeaError, OSError) as exc:
        _err(str(exc))
        return 2

    results: list[dict] = []
    failed = 0
    t0 = time.perf_counter()
    for spec in expand_inputs(args.inputs):
        if isinstance(spec, DataError):
            failed += 1
            _err(str(spec))
            results.append({"input": str(spec).split(": ", 1)[0], "ok": False, "error": str(spec)})
            continue
        try:
            res = predictor.run(spec)
        except (PointeaError, ValueError, OSError) as exc:
            failed += 1
            msg = str(exc) if str(spec) in str(exc) else f"{spec}: {exc}"
            _err(msg)
            results.append({"input": str(spec), "ok": False, "error": msg})
            continue
        results.append(res)
        if not args.json:
            _print_human(res)

    grid = None
    if args.render_grid is not None:
        try:
            grid = _render_grid(args, model, info, device)
            if not args.json:
                print(f"wrote {grid}")
        except (PointeaError, OSError, ValueError) as exc:
            _err(f"--render-grid: {exc}")
            failed += 1

    if args.json:
        doc = {
            "checkpoint": str(args.checkpoint),
            "task": predictor.task,
            "num_points": predictor.num_points,
            "results": results,
            "failed": failed,
            "seconds": round(time.perf_counter() - t0, 3),
        }
        if grid is not None:
            doc["render_grid"] = grid
        print(json.dumps(doc, indent=2))
    elif failed:
        print(
            f"{failed} of {len(results) + (args.render_grid is not None)} failed", file=sys.stderr
        )
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["main", "build_parser"]
