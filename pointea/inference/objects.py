"""Predictors of single objects: :class:`ShapePredictor` (classification) and
:class:`PartPredictor` (part segmentation)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..datasets.shapenetpart import CATEGORY_PARTS, category_index
from ..metrics import predict_parts
from ..visualization.colors import as_numpy
from .predictor import Predictor, category_of, propagate_labels
from .results import Classification, Prediction, Segmentation

__all__ = ["PartPredictor", "ShapePredictor"]


class ShapePredictor(Predictor):
    """A shape classifier's predictor: :meth:`classify`."""

    kind = "classification"
    hint = "it is a classifier: call classify()"
    ranks_classes = True

    def classify(self, points: Any, normals: Any = None, *, source: str = "") -> Classification:
        """Class probabilities of one ``(N, 3)`` cloud (normalised and resampled here)."""
        pos, x, _ = self.prepare(points, normals, source=source)
        logits = self.logits(pos, x).float().reshape(-1)
        prob = torch.softmax(logits, dim=0).cpu().numpy()
        return Classification(prob, self.class_names)

    def predict_sample(self, data: Any) -> Classification:
        logits = self.logits(data.pos, getattr(data, "x", None)).float().reshape(-1)
        return Classification(torch.softmax(logits, dim=0).cpu().numpy(), self.class_names)

    def predict_file(
        self, spec: Any, *, category: int | str | None = None, drop_nonfinite: bool = False
    ) -> Prediction:
        """Read one input with :func:`pointea.io.load_points` and classify it; the truth is
        the file's label (ModelNet40 HDF5 entries)."""
        cloud = self._read_object(spec, drop_nonfinite)
        name = str(spec)
        result = self.classify(cloud.points, cloud.normals, source=name)
        truth = int(cloud.meta["label"]) if "label" in cloud.meta else None
        return Prediction(name, cloud, result, truth)


class PartPredictor(Predictor):
    """A part segmenter's predictor: :meth:`segment` with the object's category."""

    kind = "segmentation"
    hint = "it is a part segmenter: call segment() with a category"
    labels_points = True

    def segment(
        self,
        points: Any,
        category: int | str,
        normals: Any = None,
        *,
        all_points: bool = False,
        source: str = "",
    ) -> Segmentation:
        """One part id for every point of one ``(N, 3)`` cloud of a known category.

        The model sees the cloud resampled to ``num_points`` (points it did not see get
        the label of their nearest seen point), or every point with ``all_points``.
        """
        cat = category_index(category)
        pos, x, idx = self.prepare(points, normals, all_points=all_points, source=source)
        logits = self.logits(pos, x, cat)
        sampled = predict_parts(logits.cpu(), torch.tensor([cat]), CATEGORY_PARTS).numpy()
        n = len(np.asarray(as_numpy(points)))
        if len(idx) == n and np.array_equal(idx, np.arange(n)):
            return Segmentation(sampled.astype(np.int64), cat, None)
        labels = propagate_labels(np.asarray(as_numpy(points)), idx, sampled)
        return Segmentation(labels, cat, idx)

    def predict_sample(self, data: Any) -> Segmentation:
        cat = int(data.category.reshape(-1)[0])
        logits = self.logits(data.pos, getattr(data, "x", None), cat).cpu()
        labels = predict_parts(logits, torch.tensor([cat]), CATEGORY_PARTS).numpy()
        return Segmentation(labels.astype(np.int64), cat)

    def predict_file(
        self, spec: Any, *, category: int | str | None = None, drop_nonfinite: bool = False
    ) -> Prediction:
        """Read one input and segment it. The category comes from ``category``, else from
        a ShapeNetPart HDF5 entry's label or the ShapeNet synset / category folder the
        file lies in; the truth is the file's per-point part ids when they fit."""
        cloud = self._read_object(spec, drop_nonfinite)
        name = str(spec)
        cat = category_index(category) if category is not None else category_of(spec, cloud)
        result = self.segment(cloud.points, cat, cloud.normals, source=name)
        truth = cloud.labels
        if truth is not None and (
            len(truth) != len(result.labels) or not np.isin(truth, CATEGORY_PARTS[cat]).all()
        ):
            truth = None  # labels from another scheme: no metrics
        return Prediction(name, cloud, result, truth)
