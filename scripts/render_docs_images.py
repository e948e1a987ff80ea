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
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    what = "predicted parts" if args.checkpoint else "true parts"
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_root or Path(tmp)
        written = [classification_figure(root, args.out)]
        shapes = part_shapes(root, args.checkpoint)
        written.append(parts_figure(shapes, args.out, what))
        page = html_view(shapes, args.html or Path(tmp) / "html_view.html", what)
        written += [args.html, screenshot(page, args.out / "html_view.png")]
    viz.release_renderer()
    for path in written:
        if path is not None:
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
