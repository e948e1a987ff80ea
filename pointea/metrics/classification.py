"""Shape classification metrics and the confusion matrix every task's metrics start from.

Classification (the protocol of PointNet and PCT; sources in docs/REPRODUCING.md): overall
accuracy (OA), mean per-class accuracy (mAcc) and per-class accuracy, all from a confusion
matrix.

The ``*Meter`` classes accumulate over batches with tensors only, so that a
distributed run can sum their state across processes (:meth:`ClassificationMeter.state`,
:meth:`ClassificationMeter.load_state`) and get exactly the single-process numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ..errors import InputError

__all__ = [
    "ClassificationMeter",
    "classification_metrics",
    "confusion_matrix",
]


def _as_pred(pred_or_logits: Tensor, name: str = "pred") -> Tensor:
    """Class indices from either logits ``(N, C)`` or indices ``(N,)``."""
    if pred_or_logits.dim() == 2:
        return pred_or_logits.argmax(dim=-1)
    if pred_or_logits.dim() == 1:
        if pred_or_logits.is_floating_point():
            raise InputError(f"{name}: 1-D predictions must be integer class ids, got floats")
        return pred_or_logits.long()
    raise InputError(
        f"{name}: expected logits (N, C) or class ids (N,), got shape {tuple(pred_or_logits.shape)}"
    )


def _nan_to_none(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """Confusion matrix with rows = true class, columns = predicted class.

    Args:
        pred: predicted class ids ``(N,)`` or logits ``(N, num_classes)``.
        target: true class ids ``(N,)``.
        num_classes: number of classes ``C``.

    Shapes:
        returns ``(C, C)`` int64 on the device of ``target``.
    """
    pred = _as_pred(pred)
    target = target.reshape(-1).long()
    if pred.shape != target.shape:
        raise InputError(
            f"pred has {pred.numel()} entries but target has {target.numel()}; they must match"
        )
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= num_classes):
        raise InputError(
            f"target holds class ids in [{int(target.min())}, {int(target.max())}], "
            f"outside [0, {num_classes - 1}]"
        )
    if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= num_classes):
        raise InputError(f"pred holds class ids outside [0, {num_classes - 1}]")
    idx = target * num_classes + pred.to(target.device)
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes)


def _metrics_from_confusion(cm: Tensor) -> dict:
    cm = cm.double()
    total = cm.sum()
    correct = cm.diagonal()
    support = cm.sum(dim=1)
    oa = float(correct.sum() / total) if total > 0 else float("nan")
    per_class = torch.where(support > 0, correct / support.clamp(min=1), torch.nan)
    present = support > 0
    macc = float(per_class[present].mean()) if bool(present.any()) else float("nan")
    return {
        "overall_accuracy": _nan_to_none(oa),
        "mean_class_accuracy": _nan_to_none(macc),
        "per_class_accuracy": [_nan_to_none(float(v)) for v in per_class],
        "num_samples": int(total),
    }


def classification_metrics(pred: Tensor, target: Tensor, num_classes: int) -> dict:
    """Overall accuracy, mean class accuracy and per-class accuracy.

    Classes with no sample in ``target`` have per-class accuracy ``None`` and are left
    out of the mean class accuracy (the mean runs over the classes present).

    Args:
        pred: predicted class ids ``(N,)`` or logits ``(N, num_classes)``.
        target: true class ids ``(N,)``.
        num_classes: number of classes.

    Returns:
        ``{"overall_accuracy", "mean_class_accuracy", "per_class_accuracy" (list),
        "num_samples"}``; accuracies are fractions in [0, 1].
    """
    return _metrics_from_confusion(confusion_matrix(pred, target, num_classes))


class ClassificationMeter:
    """Accumulates a confusion matrix over batches.

    Args:
        num_classes: number of classes.
        class_names: optional names, used as keys of ``per_class_accuracy`` in
            :meth:`compute` (a list in class order otherwise).
    """

    def __init__(self, num_classes: int, class_names: Sequence[str] | None = None) -> None:
        if class_names is not None and len(class_names) != num_classes:
            raise InputError(f"class_names has {len(class_names)} names for {num_classes} classes")
        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names is not None else None
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add a batch: ``pred`` logits ``(B, C)`` or ids ``(B,)``, ``target`` ``(B,)``."""
        cm = confusion_matrix(pred.detach(), target.detach(), self.num_classes)
        self.confusion += cm.cpu()

    def state(self) -> Tensor:
        """The accumulated state as one tensor (summable across processes)."""
        return self.confusion.clone()

    def load_state(self, state: Tensor) -> None:
        """Replace the state, e.g. with the sum of :meth:`state` over processes."""
        self.confusion = state.to(torch.long).cpu().view(self.num_classes, self.num_classes)

    def compute(self) -> dict:
        """Metrics of everything seen so far (see :func:`classification_metrics`)."""
        out = _metrics_from_confusion(self.confusion)
        if self.class_names is not None:
            per = out["per_class_accuracy"]
            out["per_class_accuracy"] = dict(zip(self.class_names, per, strict=True))
        return out

    def __repr__(self) -> str:
        seen = int(self.confusion.sum())
        return f"ClassificationMeter(num_classes={self.num_classes}, seen={seen})"
