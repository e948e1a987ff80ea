"""Inference: a trained model applied to arrays, files and datasets.

* :mod:`.predictor` - :class:`Predictor` (from a model folder, training checkpoint or
  PCT_Pytorch file), preparing clouds exactly as training did;
* :mod:`.grid` - predictions on dataset shapes drawn as one grid image;
* :mod:`.evaluation` - ShapeNetPart scoring on every point of each shape.

``pointea-predict``, ``pointea-eval`` and the notebooks use these; the CLI modules only
parse arguments and print.
"""

from __future__ import annotations

from .evaluation import evaluate_all_points
from .grid import grid_dataset, render_prediction_grid
from .predictor import (
    Classification,
    Prediction,
    PredictionWarning,
    Predictor,
    Segmentation,
    category_of,
    propagate_labels,
    saved_num_points,
)

__all__ = [
    "Predictor",
    "Prediction",
    "Classification",
    "Segmentation",
    "PredictionWarning",
    "category_of",
    "propagate_labels",
    "saved_num_points",
    "render_prediction_grid",
    "grid_dataset",
    "evaluate_all_points",
]
