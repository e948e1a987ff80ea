"""What a :class:`~pointea.inference.Predictor` returns: one result type per task.

* :class:`Classification` - class probabilities of one cloud;
* :class:`Segmentation` - one part id per point of one object (ShapeNetPart);
* :class:`SceneSegmentation` - one class per point of a whole scene, with per-class
  counts and, given the truth, OA / mAcc / mIoU (:mod:`pointea.metrics`);
* :class:`Prediction` - one input file as read, with its result and the truth it carried.

Each result knows its ``kind``, its JSON-ready summary (:meth:`summary`; a
:class:`Prediction`'s ``to_dict`` is what ``pointea-predict --json`` prints), its lines for
a terminal (:meth:`lines`) and its interactive view (:meth:`figure`); an object's part
labels also write themselves as PLY and PNG (:meth:`Segmentation.write`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..datasets.shapenetpart import CATEGORY_PARTS, PART_NAMES, SHAPENET_CATEGORIES
from ..errors import InputError
from ..files import safe_name
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

    kind: ClassVar[str] = "classification"
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

    def summary(self, truth: Any = None, top_k: int = 5) -> dict[str, Any]:
        """``top_k`` and, given the true class index, ``label`` and ``correct``."""
        out: dict[str, Any] = {"top_k": self.top_k(top_k)}
        if truth is not None:
            out["label"] = {"index": int(truth), "class": class_name(self.class_names, truth)}
            out["correct"] = self.index == int(truth)
        return out

    def lines(self, name: str, summary: dict[str, Any]) -> list[str]:
        """The input's name (with the true class when known) and the ranked classes."""
        extra = ""
        if "label" in summary:
            true = safe_name(summary["label"]["class"])
            extra = f"  (true: {true}, {'right' if summary['correct'] else 'wrong'})"
        ranked = [
            f"  {rank}. {safe_name(t['class']):<20s} {t['probability'] * 100:6.2f} %"
            for rank, t in enumerate(summary["top_k"], 1)
        ]
        return [f"{safe_name(name)}{extra}", *ranked]

    def colors(self) -> None:
        """Per-point colours of a view (a class has none: the viewer's default)."""
        return None

    def figure(self, norm: np.ndarray, title: str, up: str, summary: Any = None) -> Any:
        """The cloud coloured by height, the best class in the title and the hover."""
        from .. import visualization as viz

        label = f"{self.name} ({self.probability:.0%})"
        return viz.cloud_figure(
            norm,
            viz.height_colors(norm, up),
            hover=[label] * len(norm),
            title=f"{title}: {label}",
            up=up,
        )


@dataclass
class Segmentation:
    """One part id per input point (restricted to the category's parts)."""

    kind: ClassVar[str] = "segmentation"
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

    def summary(self, truth: Any = None, top_k: int = 5) -> dict[str, Any]:
        """``category``, ``part_counts`` and, given true part ids, the scores."""
        out: dict[str, Any] = {"category": self.category_name, "part_counts": self.part_counts()}
        if truth is not None:
            out.update({k: round(v, 6) for k, v in self.scores(truth).items()})
        return out

    def lines(self, name: str, summary: dict[str, Any]) -> list[str]:
        """The category (and scores), then the points of each part."""
        metrics = ""
        if "shape_iou" in summary:
            metrics = f"  accuracy {summary['accuracy']:.3f}, shape IoU {summary['shape_iou']:.3f}"
        parts = ", ".join(f"{k} {v}" for k, v in summary["part_counts"].items())
        return [f"{safe_name(name)}: {summary['category']}{metrics}", f"  points per part: {parts}"]

    def colors(self) -> np.ndarray:
        """Each point's part colour."""
        from ..visualization import part_colors

        return part_colors(self.labels, self.category)

    def _title(self, title: str, summary: dict[str, Any]) -> str:
        title = f"{title}: {self.category_name}"
        if "shape_iou" in summary:
            title += f", shape IoU {summary['shape_iou']:.2f}"
        return title

    def figure(self, norm: np.ndarray, title: str, up: str, summary: Any = None) -> Any:
        """The cloud coloured by part, hover naming the part."""
        from .. import visualization as viz

        title = self._title(title, summary or {})
        return viz.labeled_figure(norm, self.labels, category=self.category, title=title, up=up)

    def write(
        self,
        paths: dict[str, Path],
        points: np.ndarray,
        truth: Any,
        summary: dict[str, Any],
        *,
        title: str,
        size: tuple[int, int],
        up: str,
    ) -> dict[str, str]:
        """The labelled points as PLY (``paths["ply"]``) and a render (``paths["png"]``):
        truth, prediction and errors side by side when ``truth`` is known, else the
        prediction with a legend. Returns ``{"ply": path, "png": path}`` of those written."""
        from .. import visualization as viz
        from ..io import normalize_unit_sphere

        written = {}
        if "ply" in paths:
            ply = viz.export_ply(paths["ply"], points, labels=self.labels, category=self.category)
            written["ply"] = str(ply)
        if "png" in paths:
            norm = normalize_unit_sphere(points)[0]
            n = len(self.labels)
            kw = dict(category=self.category, width=size[0], height=size[1], up=up)
            kw["point_size"] = 5.0 if n <= 4096 else 3.0 if n <= 20000 else 2.0
            full = self._title(title, summary)
            if truth is not None:
                img = viz.render_comparison(norm, truth, self.labels, title=full, **kw)
            else:
                img = viz.render_labels(norm, self.labels, title=f"{full} (prediction)", **kw)
            written["png"] = str(viz.save_png(paths["png"], img))
        return written


@dataclass
class SceneSegmentation:
    """One class per point of a scene.

    Args:
        labels: ``(N,)`` int64 class ids, in the input's point order.
        class_names: the model's classes.
        seconds: time of the model's pass.
    """

    kind: ClassVar[str] = "semseg"
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

    def summary(self, truth: Any = None, top_k: int = 5) -> dict[str, Any]:
        """Points per class and the time of the pass; given the truth, its scores."""
        out = self.to_dict()
        if truth is not None:
            out.update(_rounded(self.scores(truth)))
        return out


@dataclass
class Prediction:
    """What :meth:`Predictor.predict_file` returns for one input."""

    source: str
    cloud: Any  # pointea.io.PointCloud as read
    result: Classification | Segmentation | SceneSegmentation
    truth: Any = None  # class index, or (N,) part / class ids, when the file carries them
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """What was predicted (the result's kind)."""
        return self.result.kind

    def to_dict(self, top_k: int = 5) -> dict[str, Any]:
        """A JSON-ready summary (what ``pointea-predict --json`` prints per input)."""
        out: dict[str, Any] = {
            "input": self.source,
            "ok": True,
            "points_read": len(self.cloud),
            "surface_sampled": bool(self.cloud.meta.get("surface_sampled")),
            "kind": self.kind,
            **self.result.summary(self.truth, top_k),
        }
        out.update(self.meta)
        return out


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value
