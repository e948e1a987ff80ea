"""A trained model ready to classify or segment arrays, files, scenes and dataset samples.

:class:`Predictor` holds a model with what its saved config says about its inputs (task,
training number of points, class names, whether it reads normals) and prepares every
cloud as training did: centre + unit sphere (:func:`pointea.io.normalize_unit_sphere`,
equal to :class:`pointea.transforms.NormalizeUnitSphere`), then a seeded resample to the
training number of points (:func:`pointea.io.resample_indices`). Clouds larger than
``chunk_size`` points are run chunk by chunk (:mod:`pointea.models.streaming`) when the
model uses external attention, so scoring every point of a large scan stays in bounded
memory. A scene segmenter (task ``"semseg"``, ``pct_semseg*``) instead takes every point
of a scene with its colour, in one exact pass (:meth:`Predictor.segment_scene`,
:mod:`.scenes`).

Typical use::

    predictor = Predictor.from_pretrained("runs/demo/checkpoints/best.pt")
    result = predictor.classify(points)              # (N, 3) numpy array or tensor
    print(result.name, result.probability)
    parts = predictor.segment(points, category="Chair").labels   # one part per point
    item = predictor.predict_file("scan.ply")       # a Prediction, .to_dict() for JSON
    rooms = Predictor.from_pretrained("runs/s3dis/checkpoints/best.pt")
    scene = rooms.segment_scene(xyz, rgb)             # rgb in [0, 1]; scene.counts()
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..datasets.shapenetpart import CATEGORY_PARTS, SHAPENET_CATEGORIES, category_index
from ..errors import CheckpointError, DataError, InputError
from ..io.colors import check_colour_scale
from ..metrics import predict_parts
from ..models.streaming import check_chunk_size, device_chunk_size
from ..visualization.colors import as_numpy
from .results import (
    CATEGORY_NAMES,
    Classification,
    Prediction,
    SceneSegmentation,
    Segmentation,
    class_name,
)
from .scenes import extent_warning, scene_class_names, scene_labels

__all__ = [
    "Classification",
    "SceneSegmentation",
    "Segmentation",
    "Prediction",
    "Predictor",
    "PredictionWarning",
    "category_of",
    "class_name",
    "propagate_labels",
    "saved_num_points",
]


class PredictionWarning(UserWarning):
    """Something about an input that makes its prediction less meaningful."""


TASKS = ("classification", "segmentation", "semseg")


class Predictor:
    """A model plus its input contract; predicts one cloud (or scene) at a time.

    Args:
        model: a pointea classifier, part segmenter or scene segmenter (put in eval
            mode and on ``device``).
        num_points: points per cloud the model was trained with (each cloud is
            resampled to it); ``None`` runs on every point. Scenes always use every
            point.
        task: ``"classification"``, ``"segmentation"`` or ``"semseg"`` (default: from
            the model).
        class_names: names of the classes (classification, scenes).
        device: where to run (``"auto"``: CUDA when present).
        seed: seed of the resampling.
        estimate_normals: for models reading normals, estimate them for clouds without.
        chunk_size: clouds larger than this run chunk by chunk (external attention);
            at least :data:`~pointea.models.streaming.MIN_CHUNK`; default
            :func:`~pointea.models.streaming.device_chunk_size` (65,536 on a CPU, sized by
            free memory on CUDA).
        on_warning: called with a message for questionable inputs (default:
            :func:`warnings.warn` with :class:`PredictionWarning`).
        colour_scale: the scale of the colours in files read (``"auto"``, ``"1"``,
            ``"255"``; :func:`pointea.io.colors.unit_colors`).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        num_points: int | None,
        task: str | None = None,
        class_names: Sequence[str] | None = None,
        device: Any = "cpu",
        seed: int = 0,
        estimate_normals: bool = True,
        chunk_size: int | None = None,
        on_warning: Callable[[str], None] | None = None,
        colour_scale: str = "auto",
    ) -> None:
        from ..engine.distributed import resolve_device
        from ..models import model_task

        if num_points is not None and (isinstance(num_points, bool) or int(num_points) < 1):
            raise InputError(f"num_points must be a positive integer, got {num_points!r}")
        self.device = device if isinstance(device, torch.device) else resolve_device(str(device))
        self.model = model.to(self.device).eval()
        self.task = task or model_task(getattr(model, "name", ""))
        if self.task not in TASKS:
            raise InputError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        self.num_points = None if num_points is None else int(num_points)
        self.class_names = class_names or getattr(model, "class_names", None)
        if self.task == "semseg":
            self.class_names = scene_class_names(int(model.num_classes), self.class_names)
        self.in_channels = int(getattr(model, "hparams", {}).get("in_channels", 3))
        self.seed = int(seed)
        self.estimate_normals = estimate_normals
        self.chunk_size = check_chunk_size(
            device_chunk_size(self.device) if chunk_size is None else chunk_size
        )
        self.colour_scale = check_colour_scale(colour_scale)
        self._warn = on_warning or (lambda m: warnings.warn(m, PredictionWarning, stacklevel=3))
        self._warned_normals = False
        self.info: dict[str, Any] = {}  # load_model's info when built by from_pretrained

    @property
    def needs_normals(self) -> bool:
        return self.in_channels == 6

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike, *, device: Any = "auto", num_points: int | None = None, **kw
    ) -> Predictor:
        """Load what :func:`pointea.models.load_model` accepts (a model folder, a training
        checkpoint, a PCT_Pytorch ``model.t7``) with its saved number of points.

        Raises:
            CheckpointError: the file does not record its number of points and none is
                given (scene segmenters need none: they read every point).
        """
        from ..models import load_model

        model, info = load_model(path, map_location="cpu")
        n = num_points or saved_num_points(info, str(path))
        if n is None and info.get("task") != "semseg":
            raise CheckpointError(
                f"{path}: does not record the number of points it was trained with; "
                f"pass num_points (--num-points)"
            )
        pred = cls(model, num_points=n, class_names=info.get("class_names"), device=device, **kw)
        pred.info = info
        return pred

    # ----------------------------------------------------------------------------------
    # preparing a cloud
    # ----------------------------------------------------------------------------------
    def prepare(
        self, points: Any, normals: Any = None, *, all_points: bool = False, source: str = ""
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Normalise and resample as in training.

        Returns:
            ``(pos (M, 3) float32, normals (M, 3) float32 or None, index (M,))`` where
            ``index`` maps rows back to the input points.
        """
        from .. import io

        pts = np.asarray(as_numpy(points), dtype=np.float64)
        pos, idx = io.prepare_points(pts, None if all_points else self.num_points, seed=self.seed)
        if bool(np.ptp(pts, axis=0).max() == 0):
            self._warn(
                f"{source or 'input'}: all {len(pts)} points are identical (zero extent); "
                f"the prediction is not meaningful"
            )
        x = None
        if self.needs_normals:
            if normals is not None:
                x = np.asarray(as_numpy(normals), dtype=np.float32)[idx]
            elif self.estimate_normals and len(pts) >= 3:
                x = io.estimate_normals(pos).astype(np.float32)
                if not self._warned_normals:
                    self._warn(
                        "the model reads normals; inputs without them get normals estimated "
                        "from 16 neighbours (--no-estimate-normals to refuse such inputs)"
                    )
                    self._warned_normals = True
            else:
                raise DataError(
                    f"{source or 'input'}: the model reads normals (in_channels=6) but the "
                    f"file has none"
                )
        return pos, x, idx

    # ----------------------------------------------------------------------------------
    # running the model
    # ----------------------------------------------------------------------------------
    @torch.no_grad()
    def logits(self, pos: Any, x: Any = None, category: int | None = None) -> torch.Tensor:
        """Logits of ONE prepared cloud: ``(1, C)`` (classifier) or ``(N, P)`` (segmenter).

        Clouds of more than ``chunk_size`` points stream through
        :mod:`pointea.models.streaming` when the model allows it (external attention).
        """
        from ..models.streaming import classify_large, segment_large

        t_pos = torch.as_tensor(as_numpy(pos), dtype=torch.float32, device=self.device)
        t_x = None if x is None else torch.as_tensor(as_numpy(x), dtype=torch.float32)
        t_x = None if t_x is None else t_x.to(self.device)
        large = t_pos.size(0) > self.chunk_size
        if category is None:
            if large:
                try:
                    return classify_large(self.model, t_pos, t_x)
                except InputError:
                    pass  # self-attention: run whole
            return self.model(t_pos, None, t_x)
        if large:
            try:
                return segment_large(self.model, t_pos, int(category), t_x, self.chunk_size)
            except InputError:
                pass
        cat = torch.tensor([int(category)], dtype=torch.long, device=self.device)
        return self.model(t_pos, cat, None, t_x)

    def classify(self, points: Any, normals: Any = None, *, source: str = "") -> Classification:
        """Class probabilities of one ``(N, 3)`` cloud (normalised and resampled here)."""
        if self.task != "classification":
            raise InputError(f"classify: this model segments ({self._task_hint()})")
        pos, x, _ = self.prepare(points, normals, source=source)
        logits = self.logits(pos, x).float().reshape(-1)
        prob = torch.softmax(logits, dim=0).cpu().numpy()
        return Classification(prob, self.class_names)

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
        if self.task != "segmentation":
            raise InputError(f"segment: this model is not a part segmenter ({self._task_hint()})")
        cat = category_index(category)
        pos, x, idx = self.prepare(points, normals, all_points=all_points, source=source)
        logits = self.logits(pos, x, cat)
        sampled = predict_parts(logits.cpu(), torch.tensor([cat]), CATEGORY_PARTS).numpy()
        n = len(np.asarray(as_numpy(points)))
        if len(idx) == n and np.array_equal(idx, np.arange(n)):
            return Segmentation(sampled.astype(np.int64), cat, None)
        labels = propagate_labels(np.asarray(as_numpy(points)), idx, sampled)
        return Segmentation(labels, cat, idx)

    def _task_hint(self) -> str:
        return {
            "classification": "it is a classifier: call classify()",
            "segmentation": "it is a part segmenter: call segment() with a category",
            "semseg": "it is a scene segmenter: call segment_scene() with colours",
        }[self.task]

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
        if self.task != "semseg":
            raise InputError(
                f"segment_scene: this model is a {self.task} model, not a scene segmenter; "
                f"scenes need a checkpoint trained with pointea-semseg (task s3dis)"
            )
        xyz = np.asarray(as_numpy(points), dtype=np.float64)
        rgb = np.asarray(as_numpy(colors))
        rgb = rgb / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
        warning = extent_warning(xyz, source)
        if warning:
            self._warn(warning)
        t0 = time.perf_counter()
        labels = scene_labels(
            self.model, xyz, rgb, up=up, chunk_size=self.chunk_size, progress=progress
        )
        return SceneSegmentation(labels, list(self.class_names), time.perf_counter() - t0)

    # ----------------------------------------------------------------------------------
    # dataset samples
    # ----------------------------------------------------------------------------------
    def predict_sample(self, data: Any) -> Classification | Segmentation | SceneSegmentation:
        """One dataset sample ``Data(pos[, x][, category])`` as its dataset's transforms
        prepared it (no further normalising or resampling): segmentation when it carries a
        ``category``; a scene (an :class:`~pointea.datasets.S3DIS` room ``Data(pos, rgb)``)
        for a scene segmenter."""
        if self.task == "semseg":
            return self.segment_scene(data.pos, data.rgb)
        x = getattr(data, "x", None)
        if getattr(data, "category", None) is None:
            logits = self.logits(data.pos, x).float().reshape(-1)
            return Classification(torch.softmax(logits, dim=0).cpu().numpy(), self.class_names)
        cat = int(data.category.reshape(-1)[0])
        logits = self.logits(data.pos, x, cat).cpu()
        labels = predict_parts(logits, torch.tensor([cat]), CATEGORY_PARTS).numpy()
        return Segmentation(labels.astype(np.int64), cat)

    def predict_dataset(
        self, dataset: Sequence[Any], indices: Sequence[int] | None = None
    ) -> Iterator[Classification | Segmentation | SceneSegmentation]:
        """:meth:`predict_sample` for each sample (all, or ``indices``), in order."""
        for i in range(len(dataset)) if indices is None else indices:
            yield self.predict_sample(dataset[int(i)])

    # ----------------------------------------------------------------------------------
    # files
    # ----------------------------------------------------------------------------------
    def predict_file(
        self,
        spec: Any,
        *,
        category: int | str | None = None,
        drop_nonfinite: bool = False,
    ) -> Prediction:
        """Read one input with :func:`pointea.io.load_points` and predict it.

        Segmentation takes the category from ``category``, else from a ShapeNetPart HDF5
        entry's label or the ShapeNet synset / category folder the file lies in. A scene
        segmenter reads the input as a scene (:meth:`predict_scene_file`).

        Raises:
            DataError / InputError: naming the input.
        """
        from .. import io

        if self.task == "semseg":
            if category is not None:
                raise InputError(f"{spec}: a scene segmenter takes no object category")
            return self.predict_scene_file(spec, drop_nonfinite=drop_nonfinite)
        parsed = spec if isinstance(spec, io.InputSpec) else io.parse_input_spec(spec)
        if parsed.path.suffix.lower() == ".npy":
            raise DataError(
                f"{spec}: .npy files are read as scenes (rows x y z r g b [label]), which "
                f"need a scene segmenter checkpoint (pointea-semseg); this is a "
                f"{self.task} model"
            )

        n_surface = self.num_points or 2048
        cloud = io.load_points(
            spec,
            n_surface,
            seed=self.seed,
            drop_nonfinite=drop_nonfinite,
            colour_scale=self.colour_scale,
        )
        name = str(spec)
        if self.task == "classification":
            result = self.classify(cloud.points, cloud.normals, source=name)
            truth = int(cloud.meta["label"]) if "label" in cloud.meta else None
            return Prediction(name, cloud, result, truth)
        cat = category_index(category) if category is not None else category_of(spec, cloud)
        result = self.segment(cloud.points, cat, cloud.normals, source=name)
        truth = cloud.labels
        if truth is not None and (
            len(truth) != len(result.labels) or not np.isin(truth, CATEGORY_PARTS[cat]).all()
        ):
            truth = None  # labels from another scheme: no metrics
        return Prediction(name, cloud, result, truth)

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

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({getattr(self.model, 'name', type(self.model).__name__)}, "
            f"task={self.task}, num_points={self.num_points}, device={self.device})"
        )


def saved_num_points(info: dict, source: str) -> int | None:
    """The training number of points recorded with a loaded model (``load_model``'s info):
    the pretrained folder's ``num_points``, or the training config's (read back with
    :func:`pointea.engine.config.read_saved_config`, defaults resolved)."""
    if info.get("num_points"):
        return int(info["num_points"])
    config = info.get("config") or {}
    if config.get("task"):
        from ..engine.config import read_saved_config

        try:
            cfg = read_saved_config(dict(config), source=source).resolved()
        except (InputError, TypeError, KeyError) as exc:
            raise CheckpointError(f"{source}: its training config is unusable: {exc}") from exc
        return int(cfg.num_points) if cfg.num_points else None
    return None


def category_of(spec: Any, cloud: Any) -> int:
    """The ShapeNetPart category of an input: a ShapeNetPart HDF5 entry's label (files
    with per-point part ids), else the synset or category name of its folder."""
    if (
        "label" in cloud.meta
        and cloud.labels is not None
        and 0 <= int(cloud.meta["label"]) < len(CATEGORY_NAMES)
    ):
        # A ShapeNetPart HDF5 entry ('pid' present): its 'label' is the category. In
        # ModelNet40 files (no 'pid') the label is a class, not a category.
        return int(cloud.meta["label"])
    parent = Path(str(getattr(spec, "path", spec))).parent.name
    synsets = list(SHAPENET_CATEGORIES.values())
    if parent in synsets:
        return synsets.index(parent)
    low = [n.lower() for n in CATEGORY_NAMES]
    if parent.lower() in low:
        return low.index(parent.lower())
    raise InputError(
        f"{spec}: the segmenter needs the object category: pass --category "
        f"(one of {', '.join(CATEGORY_NAMES)})"
    )


def propagate_labels(
    points: np.ndarray, idx: np.ndarray, labels: np.ndarray, chunk: int = 8192
) -> np.ndarray:
    """Give every point the label of its nearest sampled point (``points[idx]``), in the
    normalised frame; memory ``chunk * len(idx)``."""
    from ..io import normalize_unit_sphere

    pts = torch.from_numpy(np.asarray(normalize_unit_sphere(points)[0], np.float32))
    ref = pts[torch.from_numpy(np.asarray(idx))]
    out = np.empty(len(pts), dtype=np.int64)
    lab = np.asarray(labels, np.int64)
    for s in range(0, len(pts), chunk):
        d = torch.cdist(pts[s : s + chunk], ref)
        out[s : s + chunk] = lab[d.argmin(dim=1).numpy()]
    return out
