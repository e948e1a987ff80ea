"""Inference: a trained model applied to arrays, files and datasets.

* :mod:`.predictor` - :class:`Predictor` (from a model folder, training checkpoint or
  PCT_Pytorch file), preparing clouds exactly as training did; its kinds
  :class:`ShapePredictor`, :class:`PartPredictor` (:mod:`.objects`) and
  :class:`ScenePredictor` (:mod:`.scene_predictor`);
* :mod:`.results` - what it returns: :class:`Classification`, :class:`Segmentation`,
  :class:`SceneSegmentation`, :class:`Prediction`;
* :mod:`.scenes` - whole scenes through a scene segmenter (one exact pass), their renders
  and interactive views; :mod:`.scene_files` - scene files with colours in, labels out;
* :mod:`.grid` - predictions on dataset shapes drawn as one grid image;
* :mod:`.evaluation` - a checkpoint's metrics on a dataset split, and ShapeNetPart
  scoring on every point of each shape.

``pointea-predict``, ``pointea-eval`` and the notebooks use these; the CLI modules only
parse arguments and print.
"""

from __future__ import annotations

from .evaluation import evaluate_all_points, evaluate_checkpoint
from .grid import grid_dataset, render_prediction_grid
from .objects import PartPredictor, ShapePredictor
from .predictor import (
    PredictionWarning,
    Predictor,
    category_of,
    predictor_class,
    propagate_labels,
    saved_num_points,
)
from .results import Classification, Prediction, SceneSegmentation, Segmentation
from .scene_files import SCENE_EXTENSIONS, read_scene, write_scene_labels
from .scene_predictor import ScenePredictor
from .scenes import render_scene, scene_figure, segment_scene

__all__ = [
    "Predictor",
    "ShapePredictor",
    "PartPredictor",
    "ScenePredictor",
    "predictor_class",
    "Prediction",
    "Classification",
    "Segmentation",
    "SceneSegmentation",
    "PredictionWarning",
    "category_of",
    "propagate_labels",
    "saved_num_points",
    "render_prediction_grid",
    "grid_dataset",
    "evaluate_all_points",
    "evaluate_checkpoint",
    "SCENE_EXTENSIONS",
    "read_scene",
    "write_scene_labels",
    "segment_scene",
    "render_scene",
    "scene_figure",
]
