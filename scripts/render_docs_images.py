"""Render the README's pictures from a fresh clone: depth-cued renders and the HTML view.

    python scripts/render_docs_images.py                      # ground-truth parts
    python scripts/render_docs_images.py --checkpoint runs/demo-seg/checkpoints/best.pt

Writes into ``docs/images/`` (``--out``):

* ``depth_cue_classification.png``: synthetic ModelNet40 stand-in shapes coloured by
  height, far points darker (the depth cue of every pointea render);
* ``depth_cue_parts.png``: a chair's parts in the part palette with the depth cue;
* ``html_view.png``: a headless-Chromium screenshot of the interactive page (plotly,
  self-contained) that ``pointea-predict --html`` writes (skipped with a message when
  Chromium is not installed); ``--html PAGE`` keeps the page itself (about 5 MB).

With ``--checkpoint`` (a part segmenter) the parts are the model's predictions on the
synthetic shapes; without, the shapes' true parts. Everything is generated offline.

With ``--scene-run RUN`` (a ``pointea-semseg`` run folder, e.g. the offline-room run of
docs/SCENES.md) also ``scenes_room.png``: the run's first test room segmented whole in
one exact pass by ``checkpoints/best.pt`` (colour, truth, prediction, errors; top and
perspective). ``--scenes-only`` renders just that one::

    python scripts/render_docs_images.py --scene-run /tmp/semrun_demo --scenes-only
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from pointea import visualization as viz
from pointea.datasets import ModelNet40, ShapeNetPart, ensure_synthetic


def classification_figure(root: Path, out: Path) -> Path:
    data = ensure_synthetic(
        "modelnet40",
        root=root / "cls",
        num_classes=12,
        train_per_class=1,
        test_per_class=1,
        points=2048,
    )
    ds = ModelNet40(data, "test")
    wanted = ["chair", "table", "airplane", "lamp", "mug", "bottle", "torus", "cone"]
    index = {ds.class_names[int(ds[i].y)]: i for i in range(len(ds))}
    names = [n for n in wanted if n in index]
    clouds = [ds[index[n]].pos.numpy() for n in names]
    img = viz.render_grid(
        clouds,
        [viz.height_colors(c, "y") for c in clouds],
        titles=names,
        ncols=4,
        width=240,
        height=240,
        point_size=4,
        depth_cue=0.55,
        title="coloured by height, far points darker",
    )
    return viz.save_png(out / "depth_cue_classification.png", img)


def part_shapes(root: Path, checkpoint: str | None) -> list[tuple[np.ndarray, np.ndarray, int]]:
    data = ensure_synthetic(
        "shapenetpart",
        root=root / "seg",
        categories=["Chair", "Airplane", "Lamp", "Mug"],
        train_per_category=1,
        val_per_category=1,
        test_per_category=1,
        points=2048,
    )
    ds = ShapeNetPart(data, "test")
    shapes = []
    predictor = None
    if checkpoint:
        from pointea.inference import Predictor

        predictor = Predictor.from_pretrained(checkpoint, device="cpu")
    for i in range(len(ds)):
        d = ds[i]
        pos, cat = d.pos.numpy(), int(d.category.reshape(-1)[0])
        labels = d.y.numpy() if predictor is None else predictor.segment(pos, cat).labels
        shapes.append((pos, labels, cat))
    return shapes


def parts_figure(shapes, out: Path, what: str) -> Path:
    pos, labels, cat = next(s for s in shapes if s[2] == 4)  # the chair
    img = viz.render_labels(
        pos,
        labels,
        category=cat,
        width=420,
        height=420,
        depth_cue=0.55,
        title=f"Chair, {what} (depth cue)",
    )
    return viz.save_png(out / "depth_cue_parts.png", img)


def html_view(shapes, page: Path, what: str) -> Path:
    from pointea.datasets.shapenetpart import SHAPENET_CATEGORIES

    names = list(SHAPENET_CATEGORIES)
    figs = [
        viz.labeled_figure(p, lab, category=c, title=f"{names[c]}: {what}", height=460)
        for p, lab, c in shapes
    ]
    return viz.write_html(page, figs, title="pointea-predict --html")


def screenshot(page: Path, png: Path) -> Path | None:
    shot = viz.screenshot_html(page, png)
    if shot is None:
        print("chromium not installed: skipped the screenshot of the HTML view", file=sys.stderr)
    return shot


def scene_figure(run: Path, out: Path) -> Path:
    """``scenes_room.png``: the first test room of a ``pointea-semseg`` run, segmented
    whole and exactly by the run's ``best.pt``."""
    import json

    import torch

    from pointea.datasets import S3DIS
    from pointea.inference.scenes import segment_scene
    from pointea.models import create_model
    from pointea.visualization.scenes import save_room_comparison

    cfg = json.loads((run / "config.json").read_text())
    ck = torch.load(run / "checkpoints" / "best.pt", map_location="cpu", weights_only=True)
    model = create_model(ck["model_name"], **ck["model_config"])
    model.load_state_dict(ck["model"])
    test = S3DIS(cfg["data_root"], "test", cfg["test_area"], cfg["val_fraction"])
    room = test.raw(0)
    chunk = cfg.get("chunk_size", 65_536)
    pred = segment_scene(model.eval(), room["xyz"], room["rgb"], chunk_size=chunk)
    kind = "offline room" if cfg.get("synthetic") else "S3DIS"
    title = f"{test.room_name(0)} ({kind}, {ck['model_name']}, whole-room exact pass)"
    path = save_room_comparison(
        out / "scenes_room.png", room["xyz"], room["rgb"], room["label"], pred, title=title
    )
    print(
        f"{test.room_name(0)}: {len(pred):,} points, {np.mean(pred == room['label']):.1%} correct"
    )
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("docs/images"), help="default: %(default)s")
    p.add_argument("--checkpoint", help="a part segmenter: show its predictions")
    p.add_argument("--html", type=Path, default=None, help="also keep the HTML page here")
    p.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="where the synthetic sets go (default: a temporary folder)",
    )
    p.add_argument(
        "--scene-run", type=Path, default=None, help="a pointea-semseg run: scenes_room.png"
    )
    p.add_argument(
        "--scenes-only", action="store_true", help="with --scene-run: render only that figure"
    )
    args = p.parse_args(argv)
    if args.scenes_only and args.scene_run is None:
        p.error("--scenes-only: needs --scene-run RUN")
    if args.scene_run is not None and not (args.scene_run / "checkpoints" / "best.pt").is_file():
        p.error(f"--scene-run {args.scene_run}: no checkpoints/best.pt (not a finished run?)")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.scenes_only:
        print(f"wrote {scene_figure(args.scene_run, args.out)}")
        viz.release_renderer()
        return 0
    what = "predicted parts" if args.checkpoint else "true parts"
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_root or Path(tmp)
        written = [classification_figure(root, args.out)]
        shapes = part_shapes(root, args.checkpoint)
        written.append(parts_figure(shapes, args.out, what))
        page = html_view(shapes, args.html or Path(tmp) / "html_view.html", what)
        written += [args.html, screenshot(page, args.out / "html_view.png")]
        if args.scene_run is not None:
            written.append(scene_figure(args.scene_run, args.out))
    viz.release_renderer()
    for path in written:
        if path is not None:
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
