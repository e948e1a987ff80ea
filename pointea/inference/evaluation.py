"""Part-segmentation scores on every point of each shape, not a sampled subset.

The usual protocol scores a fixed number of sampled points per shape (2048). Here each
shape's full point set, as the dataset reader returns it before the sampling transform,
goes through the model at once, or chunk by chunk for large shapes
(:meth:`~pointea.inference.Predictor.logits` streams external-attention models), and
every point is compared with its true part.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..errors import InputError
from ..metrics import SegmentationMeter, predict_parts
from ..transforms import SubsamplePoints
from .predictor import Predictor

__all__ = ["evaluate_all_points", "without_sampling"]


def evaluate_all_points(
    predictor: Predictor,
    dataset: Any,
    *,
    transform: Any = "auto",
    category_names: Sequence[str] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Score a segmenter on every point of every shape of a ShapeNetPart split.

    Args:
        predictor: a segmentation :class:`Predictor`.
        dataset: a ShapeNetPart dataset (PyG ``InMemoryDataset``): shapes are taken with
            ``dataset.get(i)``, before its transform (no sampling).
        transform: applied to each full shape first; ``"auto"``: the dataset's own
            evaluation transform without its point sampling (so the text archives are
            centred and scaled into the unit sphere exactly as in training).
        category_names: keys of ``per_category_iou`` (default: the dataset's categories).
        progress: show a progress bar.

    Returns:
        the segmentation metrics plus ``points: "all"`` and ``points_scored`` (the
        number of points compared with their labels).
    """
    if predictor.task != "segmentation":
        raise InputError("evaluate_all_points: the model is not a part segmenter")
    parts = getattr(dataset, "category_parts", None)
    if parts is None:
        from ..datasets.shapenetpart import CATEGORY_PARTS as parts
    names = category_names or list(getattr(dataset, "categories", [])) or None
    meter = SegmentationMeter(parts, names)
    prepare = without_sampling(dataset.transform) if transform == "auto" else transform
    scored = 0
    indices = range(len(dataset))
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="all points", leave=False)
    for i in indices:
        data = dataset.get(int(i))  # the full shape, before the sampling transform
        if prepare is not None:
            data = prepare(data.clone())
        cat = int(data.category.reshape(-1)[0])
        x = getattr(data, "x", None)
        logits = predictor.logits(data.pos, x, cat).cpu()
        t_cat = torch.tensor([cat])
        pred = predict_parts(logits, t_cat, parts)
        target = data.y.reshape(-1).long().cpu()
        meter.update(pred, target, t_cat)
        scored += int(target.numel())
    return {**meter.compute(), "points": "all", "points_scored": scored}


def without_sampling(transform: Any) -> Any:
    """``transform`` with its :class:`~pointea.transforms.SubsamplePoints` steps removed
    (a PyG ``Compose`` is filtered; a lone sampler gives ``None``)."""
    from torch_geometric.transforms import Compose

    if transform is None or isinstance(transform, SubsamplePoints):
        return None
    if isinstance(transform, Compose):
        steps = [t for t in transform.transforms if not isinstance(t, SubsamplePoints)]
        return Compose(steps) if steps else None
    return transform
