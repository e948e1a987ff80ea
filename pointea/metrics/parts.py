"""Part segmentation metrics (ShapeNetPart; sources in docs/REPRODUCING.md).

Predictions are restricted to the parts of the shape's known category
(:func:`restrict_to_category`). A shape's IoU is the mean, over its category's parts, of
``|pred ∩ gt| / |pred ∪ gt|``, where a part absent from both prediction and truth counts
as IoU 1. **Instance mIoU** is the mean of shape IoUs over all shapes; **class mIoU** is
the mean over categories of the categories' mean shape IoU.

This module imports no dataset code: the category -> global part ids table
(``category_parts``, e.g. ``pointea.datasets.shapenetpart.CATEGORY_PARTS``) is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
from torch import Tensor

from ..errors import InputError
from .classification import _as_pred, _nan_to_none

__all__ = [
    "SegmentationMeter",
    "category_part_mask",
    "predict_parts",
    "restrict_to_category",
    "segmentation_metrics",
    "shape_ious",
]


def category_part_mask(
    category_parts: Sequence[Sequence[int]], num_parts: int | None = None, device=None
) -> Tensor:
    """Boolean table ``(num_categories, num_parts)``: True where a part belongs to a category.

    Args:
        category_parts: for each category, its global part ids.
        num_parts: total number of parts (default: largest id + 1).

    Built on the CPU and moved in one copy; a fresh tensor on every call (the metrics
    themselves use a per-device cached copy).
    """
    if len(category_parts) == 0:
        raise InputError("category_parts is empty")
    largest = max(max(parts) for parts in category_parts if len(parts)) if category_parts else -1
    num_parts = largest + 1 if num_parts is None else num_parts
    if largest >= num_parts:
        raise InputError(f"category_parts names part {largest} but num_parts is {num_parts}")
    mask = torch.zeros(len(category_parts), num_parts, dtype=torch.bool)
    for c, parts in enumerate(category_parts):
        if len(parts) == 0:
            raise InputError(f"category_parts[{c}] lists no parts")
        mask[c, list(parts)] = True
    return mask.to(device) if device is not None else mask


@lru_cache(maxsize=32)
def _cached_part_mask(
    parts: tuple[tuple[int, ...], ...], num_parts: int | None, device: torch.device
) -> Tensor:
    return category_part_mask(parts, num_parts, device=device)


def _part_mask(
    category_parts: Sequence[Sequence[int]], num_parts: int | None, device: torch.device
) -> Tensor:
    """:func:`category_part_mask`, built once per table, part count and device (read-only:
    it is shared); a training step needs no host-to-device copy for it."""
    key = tuple(tuple(int(p) for p in parts) for parts in category_parts)
    return _cached_part_mask(key, num_parts, torch.device(device))


def _point_categories(category: Tensor, batch: Tensor | None, num_points: int) -> Tensor:
    category = category.reshape(-1).long()
    if batch is None:
        if category.numel() != 1:
            raise InputError(
                f"category has {category.numel()} entries but batch is None (one shape); "
                "pass the batch vector for several shapes"
            )
        return category.expand(num_points)
    if batch.numel() != num_points:
        raise InputError(f"batch has {batch.numel()} entries for {num_points} points")
    return category[batch.long()]


def restrict_to_category(
    logits: Tensor,
    category: Tensor,
    category_parts: Sequence[Sequence[int]] | Tensor,
    batch: Tensor | None = None,
) -> Tensor:
    """Set the logits of parts outside each shape's category to ``-inf``.

    Args:
        logits: per-point part logits ``(N, num_parts)``.
        category: category id per shape ``(B,)`` (or one id for a single shape).
        category_parts: per category, its global part ids; or the boolean table of
            :func:`category_part_mask`.
        batch: shape index of each point ``(N,)``; ``None`` for a single shape.

    Shapes:
        returns ``(N, num_parts)``, same dtype and device as ``logits``.
    """
    if logits.dim() != 2:
        raise InputError(f"logits: expected (N, num_parts), got shape {tuple(logits.shape)}")
    if isinstance(category_parts, Tensor):
        mask = category_parts.to(device=logits.device, dtype=torch.bool)
    else:
        mask = _part_mask(category_parts, logits.size(1), logits.device)
    if mask.size(1) != logits.size(1):
        raise InputError(f"logits have {logits.size(1)} parts, the part table {mask.size(1)}")
    cat = _point_categories(category.to(logits.device), batch, logits.size(0))
    if cat.numel():
        low, high = torch.stack([cat.min(), cat.max()]).tolist()  # one host read
        if low < 0 or high >= mask.size(0):
            raise InputError(f"category ids must lie in [0, {mask.size(0) - 1}]")
    return logits.masked_fill(~mask[cat], float("-inf"))


def predict_parts(
    logits: Tensor,
    category: Tensor,
    category_parts: Sequence[Sequence[int]] | Tensor,
    batch: Tensor | None = None,
) -> Tensor:
    """Per-point part ids, the argmax over the parts of each shape's category ``(N,)``."""
    return restrict_to_category(logits, category, category_parts, batch).argmax(dim=-1)


def shape_ious(
    pred_or_logits: Tensor,
    target: Tensor,
    category: Tensor,
    category_parts: Sequence[Sequence[int]],
    batch: Tensor | None = None,
) -> Tensor:
    """IoU of each shape, averaged over the parts of its category.

    Logits are first restricted to the category's parts (:func:`restrict_to_category`);
    given part ids are used as they are. A part absent from both prediction and truth
    counts as IoU 1.

    Args:
        pred_or_logits: per-point logits ``(N, num_parts)`` or part ids ``(N,)``.
        target: true global part id per point ``(N,)``.
        category: category id per shape ``(B,)``.
        category_parts: per category, its global part ids.
        batch: shape index of each point ``(N,)``; ``None`` for one shape.

    Shapes:
        returns ``(B,)`` float64.
    """
    target = target.reshape(-1).long()
    category = category.reshape(-1).long()
    num_parts = max(max(p) for p in category_parts) + 1
    if pred_or_logits.dim() == 2:
        num_parts = max(num_parts, pred_or_logits.size(1))
    mask = _part_mask(category_parts, num_parts, target.device)
    if pred_or_logits.dim() == 2:
        pred = predict_parts(pred_or_logits, category, mask, batch)
    else:
        pred = _as_pred(pred_or_logits)
    pred = pred.to(target.device)
    if pred.shape != target.shape:
        raise InputError(f"pred has {pred.numel()} points but target has {target.numel()}")
    num_shapes = category.numel()
    if batch is None:
        if num_shapes != 1:
            raise InputError(
                f"category has {num_shapes} entries but batch is None (one shape); "
                "pass the batch vector for several shapes"
            )
        batch = torch.zeros_like(target)
    batch = batch.to(target.device).long()
    if batch.shape != target.shape:
        raise InputError(f"batch has {batch.numel()} entries for {target.numel()} points")
    if batch.numel() and int(batch.max()) >= num_shapes:
        raise InputError(f"batch names shape {int(batch.max())} but category has {num_shapes}")
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= num_parts):
        raise InputError(f"target holds part ids outside [0, {num_parts - 1}]")
    if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= num_parts):
        raise InputError(f"pred holds part ids outside [0, {num_parts - 1}]")
    size = num_shapes * num_parts
    hit = pred == target
    inter = torch.bincount(batch[hit] * num_parts + target[hit], minlength=size)
    n_pred = torch.bincount(batch * num_parts + pred, minlength=size)
    n_true = torch.bincount(batch * num_parts + target, minlength=size)
    union = (n_pred + n_true - inter).double()
    iou = torch.where(union > 0, inter.double() / union.clamp(min=1), 1.0)
    iou = iou.view(num_shapes, num_parts)
    own = mask[category]  # (B, num_parts)
    return (iou * own).sum(dim=1) / own.sum(dim=1)


class SegmentationMeter:
    """Accumulates shape IoUs per category; also per-point accuracy.

    Args:
        category_parts: per category, its global part ids.
        category_names: optional names, keys of ``per_category_iou`` in :meth:`compute`.
    """

    def __init__(
        self,
        category_parts: Sequence[Sequence[int]],
        category_names: Sequence[str] | None = None,
    ) -> None:
        if category_names is not None and len(category_names) != len(category_parts):
            raise InputError(
                f"category_names has {len(category_names)} names for "
                f"{len(category_parts)} categories"
            )
        self.category_parts = [list(p) for p in category_parts]
        self.category_names = (
            list(category_names)
            if category_names is not None
            else [str(i) for i in range(len(category_parts))]
        )
        n = len(category_parts)
        # rows: sum of shape IoUs per category, shapes per category; then points right/seen
        self._iou_sum = torch.zeros(n, dtype=torch.float64)
        self._count = torch.zeros(n, dtype=torch.float64)
        self._points = torch.zeros(2, dtype=torch.float64)

    def update(
        self,
        pred_or_logits: Tensor,
        target: Tensor,
        category: Tensor,
        batch: Tensor | None = None,
    ) -> Tensor:
        """Add a batch of shapes; returns their shape IoUs ``(B,)``."""
        pred_or_logits = pred_or_logits.detach()
        ious = shape_ious(pred_or_logits, target, category, self.category_parts, batch).cpu()
        cat = category.reshape(-1).long().cpu()
        self._iou_sum.index_add_(0, cat, ious)
        self._count.index_add_(0, cat, torch.ones_like(ious))
        if pred_or_logits.dim() == 2:
            pred = predict_parts(pred_or_logits, category, self.category_parts, batch)
        else:
            pred = pred_or_logits.long()
        self._points[0] += float((pred.to(target.device) == target).sum())
        self._points[1] += target.numel()
        return ious

    def state(self) -> Tensor:
        """The accumulated state as one float64 tensor (summable across processes)."""
        return torch.cat([self._iou_sum, self._count, self._points])

    def load_state(self, state: Tensor) -> None:
        """Replace the state, e.g. with the sum of :meth:`state` over processes."""
        n = len(self.category_parts)
        state = state.double().cpu()
        self._iou_sum, self._count, self._points = state[:n], state[n : 2 * n], state[2 * n :]

    def compute(self) -> dict:
        """``instance_miou``, ``class_miou``, ``per_category_iou`` (name -> IoU or None),
        ``point_accuracy``, ``num_shapes``; fractions in [0, 1]."""
        seen = self._count > 0
        total = float(self._count.sum())
        instance = float(self._iou_sum.sum() / total) if total > 0 else float("nan")
        per_cat = torch.where(seen, self._iou_sum / self._count.clamp(min=1), torch.nan)
        klass = float(per_cat[seen].mean()) if bool(seen.any()) else float("nan")
        points = float(self._points[0] / self._points[1]) if self._points[1] > 0 else float("nan")
        return {
            "instance_miou": _nan_to_none(instance),
            "class_miou": _nan_to_none(klass),
            "per_category_iou": {
                name: _nan_to_none(float(v))
                for name, v in zip(self.category_names, per_cat, strict=True)
            },
            "point_accuracy": _nan_to_none(points),
            "num_shapes": int(total),
        }

    def __repr__(self) -> str:
        return (
            f"SegmentationMeter(categories={len(self.category_parts)}, "
            f"shapes={int(self._count.sum())})"
        )


def segmentation_metrics(
    pred_or_logits: Tensor,
    target: Tensor,
    category: Tensor,
    category_parts: Sequence[Sequence[int]],
    batch: Tensor | None = None,
    category_names: Sequence[str] | None = None,
) -> dict:
    """Instance mIoU, class mIoU and per-category IoU of a set of shapes.

    Class mIoU averages over the categories present in ``category`` only.

    Args:
        pred_or_logits: per-point logits ``(N, num_parts)`` or part ids ``(N,)``.
        target: true global part id per point ``(N,)``.
        category: category id per shape ``(B,)``.
        category_parts: per category, its global part ids.
        batch: shape index of each point ``(N,)``; ``None`` for one shape.
        category_names: optional names (keys of ``per_category_iou``).
    """
    meter = SegmentationMeter(category_parts, category_names)
    meter.update(pred_or_logits, target, category, batch)
    return meter.compute()
