"""The predictor of a scene segmenter: :class:`ScenePredictor`."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch

from ..errors import DataError, InputError
from ..visualization.colors import as_numpy
from .predictor import Predictor
from .results import Prediction, SceneSegmentation
from .scenes import extent_warning, scene_class_names, segment_scene

__all__ = ["ScenePredictor"]


class ScenePredictor(Predictor):
    """A scene segmenter's predictor: :meth:`segment_scene` on points with colours."""

    kind = "semseg"
    hint = "it is a scene segmenter: call segment_scene() with colours"
    needs_num_points = False
    scenes = True

    def __init__(self, model: torch.nn.Module, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.class_names = scene_class_names(int(model.num_classes), self.class_names)

    def predict_sample(self, data: Any) -> SceneSegmentation:
        """An :class:`~pointea.datasets.S3DIS` room ``Data(pos, rgb)``, every point."""
        return self.segment_scene(data.pos, data.rgb)

    def predict_file(
        self, spec: Any, *, category: int | str | None = None, drop_nonfinite: bool = False
    ) -> Prediction:
        """A scene file (:meth:`predict_scene_file`); a scene has no object category."""
        if category is not None:
            raise InputError(f"{spec}: a scene segmenter takes no object category")
        return self.predict_scene_file(spec, drop_nonfinite=drop_nonfinite)

    def segment_scene(
        self,
        points: Any,
        colors: Any,
        *,
        up: str = "z",
        progress: bool = False,
        source: str = "",
    ) -> SceneSegmentation:
        """One class per point of a whole scene, every point in one exact pass.

        Args:
            points: ``(N, 3)`` coordinates in metres.
            colors: ``(N, 3)`` colours as floats in [0, 1] (``uint8`` arrays are read as
                0..255).
            up: the scene's up axis (the model was trained with z up).
            progress: show a progress bar over the chunks of the streamed pass.
            source: named in warnings.

        Raises:
            InputError: not a scene segmenter, or malformed points / colours.
        """
        xyz, rgb = as_numpy(points), as_numpy(colors)
        warning = extent_warning(np.asarray(xyz, dtype=np.float64), source)
        if warning:
            self._warn(warning)
        t0 = time.perf_counter()
        labels = segment_scene(
            self.model, xyz, rgb, up=up, chunk_size=self.chunk_size, progress=progress
        )
        return SceneSegmentation(labels, list(self.class_names), time.perf_counter() - t0)

    def predict_scene_file(
        self,
        spec: Any,
        *,
        drop_nonfinite: bool = False,
        up: str = "z",
        progress: bool | None = None,
        truth: str | os.PathLike | None = None,
    ) -> Prediction:
        """Read a scene file with colours (:func:`~.scene_files.read_scene`) and segment
        every point. The truth is the file's label column, or the ``truth`` file.

        Args:
            progress: a progress bar over the chunks; ``None``: when the scene has more
                than ``chunk_size`` points.

        Raises:
            DataError: the file is missing, empty, without colours, has colours out of
                range or NaN coordinates (message starting with the file name).
        """
        from .. import io
        from .scene_files import read_scene, read_truth

        spec = spec if isinstance(spec, io.InputSpec) else io.parse_input_spec(spec)
        name = str(spec)
        if spec.index is not None:
            raise DataError(
                f"{name}: an HDF5 entry is an object, not a scene; a scene segmenter reads "
                f"scene files with colours"
            )
        num_classes = len(self.class_names)
        cloud = read_scene(
            spec.path,
            num_classes=num_classes,
            drop_nonfinite=drop_nonfinite,
            colour_scale=self.colour_scale,
        )
        cloud.source = name
        labels_from = cloud.labels
        if truth is not None:
            labels_from = read_truth(truth, len(cloud), num_classes)
        if progress is None:
            progress = len(cloud) > self.chunk_size
        result = self.segment_scene(
            cloud.points, cloud.colors, up=up, progress=progress, source=name
        )
        meta = {"truth": str(truth)} if truth is not None else {}
        return Prediction(name, cloud, result, labels_from, meta)
