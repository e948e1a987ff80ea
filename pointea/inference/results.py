"""What a :class:`~pointea.inference.Predictor` returns: one result type per task.

* :class:`Classification` - class probabilities of one cloud;
* :class:`Segmentation` - one part id per point of one object (ShapeNetPart);
* :class:`SceneSegmentation` - one class per point of a whole scene, with per-class
  counts and, given the truth, OA / mAcc / mIoU (:mod:`pointea.metrics`);
* :class:`Prediction` - one input file as read, with its result and the truth it carried.

Each has a JSON-ready summary (``to_dict``, what ``pointea-predict --json`` prints).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..datasets.shapenetpart import CATEGORY_PARTS, PART_NAMES, SHAPENET_CATEGORIES
from ..errors import InputError
from ..metrics import shape_ious

__all__ = [
    "CATEGORY_NAMES",
    "Classification",
    "Prediction",
    "SceneSegmentation",
    "Segmentation",
    "class_name",
]

CATEGORY_NAMES: list[str] = list(SHAPENET_CATEGORIES)


def class_name(names: Sequence[str] | None, i: int) -> str:
    """``names[i]``, or ``str(i)`` when there are no names or ``i`` is out of range."""
    return str(names[i]) if names is not None and 0 <= i < len(names) else str(i)


@dataclass
class Classification:
    """The class probabilities of one cloud, best first in ``top_k``."""

    probabilities: np.ndarray  # (num_classes,)
    class_names: Sequence[str] | None = None

    @property
    def index(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def name(self) -> str:
        return class_name(self.class_names, self.index)

    @property
    def probability(self) -> float:
        return float(self.probabilities[self.index])

    def top_k(self, k: int = 5) -> list[dict[str, Any]]:
        """``[{"index", "class", "probability"}, ...]``, the ``k`` most likely classes."""
        order = np.argsort(-self.probabilities, kind="stable")[: max(1, k)]
        return [
            {
                "index": int(i),
                "class": class_name(self.class_names, int(i)),
                "probability": round(float(self.probabilities[i]), 6),
            }
            for i in order
        ]


@dataclass
class Segmentation:
    """One part id per input point (restricted to the category's parts)."""

    labels: np.ndarray  # (N,) global part ids, every input point
    category: int
    sampled: np.ndarray | None = None  # indices the model saw (None: every point)

    @property
    def category_name(self) -> str:
        return CATEGORY_NAMES[self.category]

    def part_counts(self) -> dict[str, int]:
        return {PART_NAMES[p]: int((self.labels == p).sum()) for p in CATEGORY_PARTS[self.category]}

    def scores(self, truth: np.ndarray) -> dict[str, float]:
        """``{"accuracy", "shape_iou"}`` against true part ids of every point."""
        truth = np.asarray(truth, dtype=np.int64).reshape(-1)
        if truth.shape != self.labels.shape:
            raise InputError(f"truth has {truth.size} labels for {self.labels.size} points")
        iou = shape_ious(
            torch.from_numpy(self.labels),
            torch.from_numpy(truth),
            torch.tensor([self.category]),
            CATEGORY_PARTS,
        )
        return {
            "accuracy": float((self.labels == truth).mean()),
            "shape_iou": float(iou[0]),
        }


@dataclass
class SceneSegmentation:
    """One class per point of a scene.

    Args:
        labels: ``(N,)`` int64 class ids, in the input's point order.
        class_names: the model's classes.
        seconds: time of the model's pass.
    """

    labels: np.ndarray
    class_names: Sequence[str]
    seconds: float = 0.0

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def counts(self) -> dict[str, int]:
        """Points per class, every class in the model's order (zero when absent)."""
        c = np.bincount(self.labels, minlength=self.num_classes)
        return {name: int(c[i]) for i, name in enumerate(self.class_names)}

    def scores(self, truth: np.ndarray) -> dict[str, Any]:
        """``overall_accuracy``, ``mean_class_accuracy``, ``mean_iou`` and ``per_class_iou``
        (``{class: IoU or None}``; ``None``: absent from truth and prediction)."""
        from ..metrics import semseg_metrics

        truth = np.asarray(truth, dtype=np.int64).reshape(-1)
        if truth.shape != self.labels.shape:
            raise InputError(f"truth has {truth.size} labels for {self.labels.size} points")
        m = semseg_metrics(torch.from_numpy(self.labels), torch.from_numpy(truth), self.num_classes)
        return {
            "overall_accuracy": m["overall_accuracy"],
            "mean_class_accuracy": m["mean_class_accuracy"],
            "mean_iou": m["mean_iou"],
            "per_class_iou": dict(zip(self.class_names, m["per_class_iou"], strict=True)),
        }

    def to_dict(self) -> dict[str, Any]:
        return {"class_counts": self.counts(), "seconds": round(self.seconds, 3)}


@dataclass
class Prediction:
    """What :meth:`Predictor.predict_file` returns for one input."""

    source: str
    cloud: Any  # pointea.io.PointCloud as read
    result: Classification | Segmentation | SceneSegmentation
    truth: Any = None  # class index, or (N,) part / class ids, when the file carries them
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        if isinstance(self.result, SceneSegmentation):
            return "semseg"
        return "classification" if isinstance(self.result, Classification) else "segmentation"

    def to_dict(self, top_k: int = 5) -> dict[str, Any]:
        """A JSON-ready summary (what ``pointea-predict --json`` prints per input)."""
        out: dict[str, Any] = {
            "input": self.source,
            "ok": True,
            "points_read": len(self.cloud),
            "surface_sampled": bool(self.cloud.meta.get("surface_sampled")),
            "task": self.task,
        }
        r = self.result
        if isinstance(r, Classification):
            out["top_k"] = r.top_k(top_k)
            if self.truth is not None:
                out["label"] = {
                    "index": int(self.truth),
                    "class": class_name(r.class_names, self.truth),
                }
                out["correct"] = r.index == int(self.truth)
        elif isinstance(r, SceneSegmentation):
            out.update(r.to_dict())
            if self.truth is not None:
                out.update(_rounded(r.scores(self.truth)))
        else:
            out["category"] = r.category_name
            out["part_counts"] = r.part_counts()
            if self.truth is not None:
                out.update({k: round(v, 6) for k, v in r.scores(self.truth).items()})
        out.update(self.meta)
        return out


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value
