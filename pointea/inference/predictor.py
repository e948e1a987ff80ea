"""A trained model ready to classify or segment arrays, files, scenes and dataset samples.

:class:`Predictor` holds a model with what its saved config says about its inputs (kind,
training number of points, class names, whether it reads normals) and prepares every
cloud as training did: centre + unit sphere (:func:`pointea.io.normalize_unit_sphere`,
equal to :class:`pointea.transforms.NormalizeUnitSphere`), then a seeded resample to the
training number of points (:func:`pointea.io.resample_indices`). Clouds larger than
``chunk_size`` points are run chunk by chunk (:mod:`pointea.models.streaming`) when the
model uses external attention, so scoring every point of a large scan stays in bounded
memory. A scene segmenter (kind ``"semseg"``, ``pct_semseg*``) instead takes every point
of a scene with its colour, in one exact pass (:meth:`Predictor.segment_scene`,
:mod:`.scenes`).

``Predictor(model, ...)`` and :meth:`Predictor.from_pretrained` give the predictor of the
model's kind: :class:`ShapePredictor` (``classify``), :class:`PartPredictor`
(``segment``) or :class:`ScenePredictor` (``segment_scene``); each answers
``predict_sample`` and ``predict_file`` its own way, and the methods of another kind
refuse with a hint naming the right one.

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
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..datasets.shapenetpart import SHAPENET_CATEGORIES
from ..errors import CheckpointError, DataError, InputError
from ..io.colors import check_colour_scale
from ..models.chunks import check_chunk_size, device_chunk_size
from ..visualization.colors import as_numpy
from .results import (
    CATEGORY_NAMES,
    Classification,
    Prediction,
    SceneSegmentation,
    Segmentation,
    class_name,
)

__all__ = [
    "Classification",
    "SceneSegmentation",
    "Segmentation",
    "Prediction",
    "Predictor",
    "predictor_class",
    "PredictionWarning",
    "category_of",
    "class_name",
    "propagate_labels",
    "saved_num_points",
]


class PredictionWarning(UserWarning):
    """Something about an input that makes its prediction less meaningful."""


_SCENES_NEED = "; scenes need a checkpoint trained with pointea-semseg"


class Predictor:
    """A model plus its input contract; predicts one cloud (or scene) at a time.

    ``Predictor(model, ...)`` builds the subclass of the model's kind (see the module
    docstring); subclasses set :attr:`kind` and :attr:`hint`.

    Args:
        model: a pointea classifier, part segmenter or scene segmenter (put in eval
            mode and on ``device``).
        num_points: points per cloud the model was trained with (each cloud is
            resampled to it); ``None`` runs on every point. Scenes always use every
            point.
        kind: ``"classification"``, ``"segmentation"`` or ``"semseg"`` (default: from
            the model's registry name).
        class_names: names of the classes (classification, scenes).
        device: where to run (``"auto"``: CUDA when present).
        seed: seed of the resampling.
        estimate_normals: for models reading normals, estimate them for clouds without.
        chunk_size: clouds larger than this run chunk by chunk (external attention);
            at least :data:`~pointea.models.chunks.MIN_CHUNK`; default
            :func:`~pointea.models.chunks.device_chunk_size` (65,536 on a CPU, sized by
            free memory on CUDA).
        on_warning: called with a message for questionable inputs (default:
            :func:`warnings.warn` with :class:`PredictionWarning`).
        colour_scale: the scale of the colours in files read (``"auto"``, ``"1"``,
            ``"255"``; :func:`pointea.io.colors.unit_colors`).
    """

    #: what the model predicts; one subclass per kind
    kind: ClassVar[str] = ""
    #: which method to call, for the refusals of the others
    hint: ClassVar[str] = ""
    #: whether a checkpoint must record its training number of points
    needs_num_points: ClassVar[bool] = True
    #: inputs are whole scenes with colours (scene files), not single objects
    scenes: ClassVar[bool] = False
    #: results rank classes (``top_k``)
    ranks_classes: ClassVar[bool] = False
    #: results label every point of an object (written as PLY / PNG per input)
    labels_points: ClassVar[bool] = False

    def __new__(cls, model: torch.nn.Module, *args: Any, **kwargs: Any) -> Predictor:
        if cls is Predictor:
            cls = predictor_class(kwargs.get("kind") or _model_kind(model))
        return super().__new__(cls)

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        num_points: int | None,
        kind: str | None = None,
        class_names: Sequence[str] | None = None,
        device: Any = "cpu",
        seed: int = 0,
        estimate_normals: bool = True,
        chunk_size: int | None = None,
        on_warning: Callable[[str], None] | None = None,
        colour_scale: str = "auto",
    ) -> None:
        from ..devices import resolve_device

        if kind is not None and kind != self.kind:
            raise InputError(f"kind {kind!r}: this is a {self.kind} predictor")
        if num_points is not None and (isinstance(num_points, bool) or int(num_points) < 1):
            raise InputError(f"num_points must be a positive integer, got {num_points!r}")
        self.device = device if isinstance(device, torch.device) else resolve_device(str(device))
        self.model = model.to(self.device).eval()
        self.num_points = None if num_points is None else int(num_points)
        self.class_names = class_names or getattr(model, "class_names", None)
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
        #: the task the model was trained on (``modelnet40``, ...), when recorded
        self.task: str | None = None

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
        kind = info.get("kind") or _model_kind(model)
        if n is None and predictor_class(kind).needs_num_points:
            raise CheckpointError(
                f"{path}: does not record the number of points it was trained with; "
                f"pass num_points (--num-points)"
            )
        pred = Predictor(
            model, num_points=n, class_names=info.get("class_names"), device=device, **kw
        )
        if not isinstance(pred, cls):
            raise CheckpointError(f"{path}: holds a {kind} model, not a {cls.kind} model")
        pred.info = info
        pred.task = info.get("task")
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
        :mod:`pointea.models.streaming`: every classifier, and segmenters that
        :func:`~pointea.models.streaming.is_streamable` accepts (external attention).
        """
        from ..models.streaming import classify_large, is_streamable, segment_large

        t_pos = torch.as_tensor(as_numpy(pos), dtype=torch.float32, device=self.device)
        t_x = None if x is None else torch.as_tensor(as_numpy(x), dtype=torch.float32)
        t_x = None if t_x is None else t_x.to(self.device)
        large = t_pos.size(0) > self.chunk_size
        if category is None:
            if large:  # the classifier's attention runs on sampled centres: any streams
                return classify_large(self.model, t_pos, t_x)
            return self.model(t_x, t_pos)
        if large and is_streamable(self.model):
            return segment_large(self.model, t_pos, int(category), t_x, self.chunk_size)
        cat = torch.tensor([int(category)], dtype=torch.long, device=self.device)
        return self.model(t_x, t_pos, category=cat)

    def _refuse(self, method: str, need: str = "") -> InputError:
        return InputError(f"{method}: this is a {self.kind} model ({self.hint}){need}")

    def classify(self, points: Any, normals: Any = None, *, source: str = "") -> Classification:
        """Class probabilities of one cloud (:class:`ShapePredictor`)."""
        raise self._refuse("classify")

    def segment(
        self,
        points: Any,
        category: int | str,
        normals: Any = None,
        *,
        all_points: bool = False,
        source: str = "",
    ) -> Segmentation:
        """One part per point of one object (:class:`PartPredictor`)."""
        raise self._refuse("segment")

    def segment_scene(
        self, points: Any, colors: Any, *, up: str = "z", progress: bool = False, source: str = ""
    ) -> SceneSegmentation:
        """One class per point of a whole scene (:class:`ScenePredictor`)."""
        raise self._refuse("segment_scene", _SCENES_NEED)

    def predict_scene_file(self, spec: Any, **kw: Any) -> Prediction:
        """A scene file, segmented (:class:`ScenePredictor`)."""
        raise self._refuse("predict_scene_file", _SCENES_NEED)

    # ----------------------------------------------------------------------------------
    # dataset samples
    # ----------------------------------------------------------------------------------
    def predict_sample(self, data: Any) -> Classification | Segmentation | SceneSegmentation:
        """One dataset sample ``Data(pos[, x][, category])`` as its dataset's transforms
        prepared it (no further normalising or resampling)."""
        raise NotImplementedError

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
        """Read one input and predict it (see the subclasses).

        Raises:
            DataError / InputError: naming the input.
        """
        raise NotImplementedError

    def _read_object(self, spec: Any, drop_nonfinite: bool) -> Any:
        """One object input read with :func:`pointea.io.load_points` (meshes sampled to
        the training number of points)."""
        from .. import io

        parsed = spec if isinstance(spec, io.InputSpec) else io.parse_input_spec(spec)
        if parsed.path.suffix.lower() == ".npy":
            raise DataError(
                f"{spec}: .npy files are read as scenes (rows x y z r g b [label]), which "
                f"need a scene segmenter checkpoint (pointea-semseg); this is a "
                f"{self.kind} model"
            )
        return io.load_points(
            spec,
            self.num_points or 2048,
            seed=self.seed,
            drop_nonfinite=drop_nonfinite,
            colour_scale=self.colour_scale,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({getattr(self.model, 'name', type(self.model).__name__)}, "
            f"kind={self.kind}, num_points={self.num_points}, device={self.device})"
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


def _model_kind(model: torch.nn.Module) -> str:
    from ..models import model_kind

    return model_kind(getattr(model, "name", ""))


def predictor_class(kind: str) -> type[Predictor]:
    """The :class:`Predictor` subclass of models that predict ``kind``."""
    from . import objects, scene_predictor  # noqa: F401  (the subclasses register)

    for cls in Predictor.__subclasses__():
        if cls.kind == kind:
            return cls
    kinds = [c.kind for c in Predictor.__subclasses__()]
    raise InputError(f"kind must be one of {', '.join(kinds)}, got {kind!r}")
