"""A model's predictions on dataset shapes, drawn as one grid image (the demo's figure).

The model runs through :class:`~pointea.inference.Predictor`; drawing goes through
:mod:`pointea.visualization` only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data

from ..errors import InputError
from ..io import resample_indices
from ..visualization import (
    ERROR_COLOR,
    height_colors,
    part_colors,
    render_grid,
    save_png,
)
from .predictor import Predictor, Segmentation, class_name

__all__ = ["render_prediction_grid", "grid_dataset"]


def render_prediction_grid(
    model: Any,
    dataset: Sequence[Any],
    path: str | os.PathLike | None = None,
    *,
    num_shapes: int = 8,
    indices: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    num_points: int | None = None,
    ncols: int = 4,
    width: int = 256,
    height: int = 256,
    device: Any = "cpu",
    seed: int = 0,
    title: str = "",
    summary: bool = True,
    **render_kw: Any,
) -> np.ndarray:
    """Run a model on dataset shapes and render its predictions as one grid image.

    Classification: points coloured by height (with the depth cue), titled
    ``pred (prob)`` in green when right, red with the true class when wrong. Part
    segmentation (samples carry ``category``): points coloured by predicted part
    (restricted to the shape's category), wrong points in red, titled with the category
    and shape IoU.

    Args:
        model: a pointea classifier or segmenter, or a :class:`Predictor` (eval mode is
            set here, then restored).
        dataset: indexable, yielding ``Data(pos, y[, category])`` as in the data contract,
            already prepared by the dataset's transforms.
        path: where to write the PNG (``None``: only return the image).
        num_shapes: how many shapes (seeded random choice); ignored with ``indices``.
        class_names: names of the classes (classification titles).
        num_points: run on this many points of each shape (seeded random subset; the
            training number of points), ``None`` for all.
        device: where to run the model.
        title: figure title.
        summary: append the tally to the title (``5 of 8 right`` / ``mean shape IoU``).
        render_kw: passed to :func:`~pointea.visualization.render_grid` (``up``,
            ``depth_cue``, ``backend`` ...).

    Returns:
        ``(H, W, 3)`` uint8 image.
    """
    n = len(dataset)
    if n == 0:
        raise InputError("the dataset is empty")
    if indices is None:
        k = min(num_shapes, n)
        indices = np.random.default_rng(seed).choice(n, k, replace=False).tolist()
    if isinstance(model, Predictor):
        predictor, net = model, model.model
    else:
        predictor, net = None, model
    was_training = bool(getattr(net, "training", False))
    if predictor is None:
        predictor = Predictor(net, num_points=num_points, device=device, class_names=class_names)
    names = class_names or predictor.class_names
    up = render_kw.get("up", "y")
    clouds, colors, titles, tcolors = [], [], [], []
    legend: list[tuple[str, tuple[float, float, float]]] = []
    scores: list[float] = []  # 1/0 per shape (classification) or shape IoU (segmentation)
    segmentation = False
    try:
        predictor.model.eval()
        for i in indices:
            data = dataset[int(i)]
            n_all = data.pos.size(0)
            keep = (
                torch.arange(n_all)
                if num_points is None or num_points >= n_all
                else torch.from_numpy(resample_indices(n_all, num_points, seed))
            )
            x = getattr(data, "x", None)
            sample = Data(
                pos=data.pos[keep].float(),
                x=None if x is None else x[keep],
                category=getattr(data, "category", None),
            )
            points = sample.pos.cpu().numpy()
            clouds.append(points)
            result = predictor.predict_sample(sample)
            if isinstance(result, Segmentation):
                ci = result.category
                true = data.y.reshape(-1)[keep].cpu().numpy()
                iou = result.scores(true)["shape_iou"]
                scores.append(iou)
                cols = part_colors(result.labels, ci)
                cols[result.labels != true] = ERROR_COLOR
                colors.append(cols)
                titles.append(f"{result.category_name}  IoU {iou:.2f}")
                tcolors.append("black")
                legend = [("wrong part", ERROR_COLOR)]
                segmentation = True
            else:
                p, c = result.probability, result.index
                true = int(data.y.reshape(-1)[0])
                ok = c == true
                scores.append(float(ok))
                colors.append(height_colors(points, up))
                guess = f"{class_name(names, c)} ({p:.0%})"
                titles.append(guess if ok else f"{guess}, true {class_name(names, true)}")
                tcolors.append((0.1, 0.5, 0.1) if ok else ERROR_COLOR)
    finally:
        predictor.model.train(was_training)
    if summary and scores:
        tally = (
            f"mean shape IoU {np.mean(scores):.2f}"
            if segmentation
            else f"{int(sum(scores))} of {len(scores)} right"
        )
        title = f"{title}: {tally}" if title else tally
    img = render_grid(
        clouds,
        colors,
        titles=titles,
        title_colors=tcolors,
        ncols=ncols,
        legend=legend,
        title=title,
        width=width,
        height=height,
        **render_kw,
    )
    if path is not None:
        save_png(path, img)
    return img


def grid_dataset(
    predictor: Predictor,
    split: str = "test",
    *,
    root: str | os.PathLike | None = None,
    data_format: str | None = None,
    source: str = "checkpoint",
) -> tuple[Any, Sequence[str] | None, int | None]:
    """The split to draw a prediction grid from, prepared as the run evaluated it.

    A training checkpoint records its data and evaluation pipeline (rebuilt with
    ``build_split``); other models need ``root`` and get the evaluation pipeline of their
    task (or the first task of their kind) at the predictor's number of points.

    Returns:
        ``(dataset, class_names, num_points or None when the dataset already subsamples)``.
    """
    from ..engine.config import TrainConfig, read_saved_config
    from ..engine.trainer import build_split
    from ..tasks import get_task, task_of_kind

    config = predictor.info.get("config") or {}
    if config.get("task"):
        cfg = read_saved_config(dict(config), source=source).resolved()
    elif root is None:
        raise InputError(f"{source}: does not record its dataset; pass --dataset-root")
    else:  # the evaluation pipeline of the task it was trained on (or of its kind)
        task = get_task(predictor.task) if predictor.task else task_of_kind(predictor.kind)
        cfg = TrainConfig(task=task.name, num_points=predictor.num_points).resolved()
    if data_format:
        cfg.data_format = data_format
    ds = build_split(cfg, split, root=root, train=False)
    names = predictor.class_names or getattr(ds, "class_names", None)
    return ds, (names if predictor.ranks_classes else None), None
