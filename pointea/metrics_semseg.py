"""Semantic segmentation metrics of scenes: OA, mAcc, mIoU and per-class IoU.

All four come from one confusion matrix accumulated over every evaluated point of every
room (S3DIS convention, as in PointNet's and DGCNN's evaluation scripts): the class IoU
is ``TP / (TP + FP + FN)`` over the whole split, not a mean of per-room IoUs. Classes
absent from both truth and prediction have IoU ``None`` and are left out of the means.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .metrics import confusion_matrix

__all__ = [
    "SemSegMeter",
    "majority_baseline",
    "semseg_metrics",
    "semseg_metrics_from_confusion",
]


def semseg_metrics_from_confusion(cm: Tensor, class_names: Sequence[str] | None = None) -> dict:
    """OA, mAcc, mIoU and per-class IoU / accuracy from a ``(C, C)`` confusion matrix
    (rows = truth, columns = prediction)."""
    cm = cm.double()
    tp = cm.diagonal()
    support = cm.sum(dim=1)
    predicted = cm.sum(dim=0)
    union = support + predicted - tp
    total = float(cm.sum())
    acc = [float(t / s) if s > 0 else None for t, s in zip(tp, support, strict=True)]
    iou = [float(t / u) if u > 0 else None for t, u in zip(tp, union, strict=True)]
    acc_present = [a for a, s in zip(acc, support, strict=True) if s > 0]
    iou_present = [v for v in iou if v is not None]
    out = {
        "overall_accuracy": float(tp.sum() / total) if total > 0 else None,
        "mean_class_accuracy": sum(acc_present) / len(acc_present) if acc_present else None,
        "mean_iou": sum(iou_present) / len(iou_present) if iou_present else None,
        "per_class_iou": iou,
        "per_class_accuracy": acc,
        "num_points": int(total),
    }
    if class_names is not None:
        out["class_names"] = list(class_names)
    return out


def semseg_metrics(
    pred: Tensor, target: Tensor, num_classes: int, class_names: Sequence[str] | None = None
) -> dict:
    """Metrics of one set of points: ``pred`` class ids ``(N,)`` or logits ``(N, C)``."""
    return semseg_metrics_from_confusion(confusion_matrix(pred, target, num_classes), class_names)


def majority_baseline(train_counts, test_counts, class_names: Sequence[str] | None = None) -> dict:
    """Metrics of predicting the training points' most frequent class everywhere.

    Args:
        train_counts / test_counts: points per class ``(C,)`` of the two splits.
    """
    train_counts = torch.as_tensor(train_counts)
    test_counts = torch.as_tensor(test_counts, dtype=torch.long)
    c = test_counts.numel()
    majority = int(train_counts.argmax())
    cm = torch.zeros(c, c, dtype=torch.long)
    cm[:, majority] = test_counts
    out = semseg_metrics_from_confusion(cm, class_names)
    out["class"] = class_names[majority] if class_names is not None else majority
    return out


class SemSegMeter:
    """Accumulates the confusion matrix over rooms; :meth:`state` / :meth:`load_state`
    let a distributed run sum it across processes."""

    def __init__(self, num_classes: int, class_names: Sequence[str] | None = None) -> None:
        self.num_classes = num_classes
        self.class_names = class_names
        self.cm = torch.zeros(num_classes, num_classes, dtype=torch.long)

    def update(self, pred: Tensor, target: Tensor) -> None:
        self.cm += confusion_matrix(pred.detach(), target.detach(), self.num_classes).cpu()

    def state(self) -> Tensor:
        return self.cm.clone()

    def load_state(self, state: Tensor) -> None:
        self.cm = state.to(torch.long).cpu().clone()

    def compute(self) -> dict:
        return semseg_metrics_from_confusion(self.cm, self.class_names)

    def __repr__(self) -> str:
        return f"SemSegMeter(num_classes={self.num_classes}, points={int(self.cm.sum())})"
