"""What every task answers: :class:`Task`, and :class:`TaskData`, the splits it builds.

A task is one problem on one dataset (``modelnet40``: shape classification on ModelNet40).
It owns everything specific to that problem: the recipe, the default model, the splits
and their transforms, how a batch goes through the model, what a prediction is, the
meter and its summary, the metric that selects the best epoch and how to get the data.
The engine, :mod:`pointea.inference` and the command-line tools ask the task and never
compare its name.

The modules here import torch and the datasets lazily, inside the methods: the settings
(:mod:`pointea.engine.config`) import the registry without torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from torch import Tensor, nn
    from torch.utils.data import Dataset

    from ..engine.config import TrainConfig

__all__ = ["SCENE_ONLY_SETTINGS", "Task", "TaskData"]

_SCENE_ONLY = "only applies to s3dis (pointea-semseg)"

#: settings only scene tasks read: flag name -> why a shape task refuses it
SCENE_ONLY_SETTINGS: dict[str, str] = {
    "test_area": _SCENE_ONLY,
    "chunk_size": _SCENE_ONLY,
    "synthetic_density": _SCENE_ONLY,
    "synthetic_rooms_per_area": _SCENE_ONLY,
}


@dataclass
class TaskData:
    """The three splits of a task and what the metrics need to know about them.

    Args:
        train / val / test: datasets of PyG ``Data`` samples (transforms applied inside).
        num_classes: classes (classification, scenes) or parts (part segmentation).
        class_names: class names (classification, scenes) or category names (parts).
        category_parts: part segmentation only: global part ids of each category.
        val_split: which split selected the best epoch (for the record).
    """

    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    class_names: list[str]
    category_parts: list[list[int]] | None = None
    val_split: str = "val"

    def __repr__(self) -> str:
        return (
            f"TaskData(train={len(self.train)}, val={len(self.val)}, test={len(self.test)}, "
            f"num_classes={self.num_classes})"
        )


class Task:
    """One problem on one dataset. Subclasses set the class attributes and override the
    methods whose default does not fit.

    Attributes:
        name: the recipe's name (``--task``), e.g. ``"modelnet40"``.
        kind: the kind of output: ``"classification"`` (one label per cloud),
            ``"segmentation"`` (one part per point, within the shape's category) or
            ``"semseg"`` (one class per point of a whole scene). Checkpoints store it
            under ``kind``; the model registry files models by it.
        title: a few words for ``--help`` and summaries.
        model: the registry model trained by default.
        metric: the validation metric that picks ``best.pt``.
        unit: what one evaluation sample is called (``clouds``, ``shapes``, ``rooms``).
        recipe: the values of the settings left at ``None`` (docs/TRAINING.md).
        source: where the recipe comes from (one line).
        refused: settings a user may not give this task: name -> why.
        foreign_models: name prefixes of the registry presets of other kinds.
        has_categories: samples carry a shape category (``--categories`` applies).
        variants: the dataset's variants (``--variant``), the default first.
        labels: what the model's outputs are called (``classes`` / ``parts``); its
            constructor takes their number as ``num_<labels>``.
        all_points: evaluation can score every point of each sample, not only the
            sampled ones (``pointea-eval --all-points``).
        votes: whether test-time voting (``pointea-eval --votes``) applies.
        whole_scenes: evaluation segments whole scenes, one per batch, every point.
    """

    name: ClassVar[str]
    kind: ClassVar[str]
    title: ClassVar[str]
    model: ClassVar[str]
    metric: ClassVar[str]
    unit: ClassVar[str] = "clouds"
    recipe: ClassVar[dict[str, Any]]
    source: ClassVar[str] = ""
    refused: ClassVar[dict[str, str]] = SCENE_ONLY_SETTINGS
    foreign_models: ClassVar[tuple[str, ...]] = ()
    has_categories: ClassVar[bool] = False
    variants: ClassVar[tuple[str, ...]] = ()
    labels: ClassVar[str] = "classes"
    votes: ClassVar[bool] = True
    all_points: ClassVar[bool] = False
    whole_scenes: ClassVar[bool] = False

    # -- settings ------------------------------------------------------------------
    def problems(self, cfg: TrainConfig) -> list[str]:
        """What is wrong with ``cfg`` for this task (empty: nothing)."""
        problems = []
        if cfg.categories is not None and not self.has_categories:
            problems.append("categories (--categories) only applies to part segmentation")
        if cfg.variant is not None and not self.variants:
            problems.append(f"variant (--variant): task {self.name} has no variants")
        if cfg.steps_per_epoch is not None or cfg.block_vote:
            problems.append(
                "steps_per_epoch / block_vote (--steps-per-epoch, --block-vote) only apply "
                "to s3dis (scene segmentation)"
            )
        if cfg.model is not None and not self.accepts_model(cfg.model):
            problems.append(
                f"model {cfg.model!r} is not a {self.kind} model; task {self.name!r} "
                f"trains {self.kind} models (default {self.model})"
            )
        return problems

    def accepts_model(self, name: str) -> bool:
        """Whether the registry model ``name`` may train this task (checked by name,
        without importing torch: the presets of another kind are refused, a model a user
        registered is trusted)."""
        return not name.startswith(self.foreign_models)

    def download_hint(self, cfg: TrainConfig) -> str:
        """One sentence on how to get the data when it is missing."""
        root = cfg.data_root or "data"
        return (
            f"With internet access, rerun with --download (--data-root {root}) to fetch it; "
            "or train on the offline procedural stand-in with --synthetic."
        )

    # -- data ----------------------------------------------------------------------
    def data_root(self, cfg: TrainConfig) -> Path:
        """The dataset root of ``cfg``: ``data_root`` (default ``data``), or with
        ``synthetic`` the offline stand-in's (written on first use)."""
        return self.stand_in(cfg) if cfg.synthetic else Path(cfg.data_root or "data")

    def stand_in(self, cfg: TrainConfig) -> Path:
        """Write the offline stand-in unless a usable one is there; its root."""
        from ..datasets.synthetic import ensure_synthetic

        kwargs = {"root": cfg.data_root} if cfg.data_root else {}
        return Path(ensure_synthetic(self.name, **kwargs))

    def transforms(self, cfg: TrainConfig, train: bool) -> Any:
        """The per-sample transform of a split."""
        from ..errors import InputError

        raise InputError(f"task {self.name}: its samples have no per-shape transform")

    def split(
        self, cfg: TrainConfig, split: str, root: Path, train: bool
    ) -> Dataset:  # pragma: no cover - every task overrides
        """One split (``train`` / ``val`` / ``trainval`` / ``test``)."""
        raise NotImplementedError

    def task_data(self, cfg: TrainConfig, root: Path) -> TaskData:
        """The splits of ``cfg``'s protocol (``validation``: train / val / test;
        ``full-train``: trainval / val / test, nothing selected)."""
        full = cfg.protocol == "full-train"
        tr = self.split(cfg, "trainval" if full else "train", root, True)
        va, te = (self.split(cfg, s, root, False) for s in ("val", "test"))
        if full:
            selected = "none (full-train protocol: the last epoch is kept)"
        else:
            selected = self.selection_split(cfg, tr, va)
        return self.assemble(tr, va, te, selected)

    def selection_split(self, cfg: TrainConfig, train: Dataset, val: Dataset) -> str:
        """Which split selects the best epoch, in words."""
        return "val"

    def assemble(self, train: Dataset, val: Dataset, test: Dataset, selected: str) -> TaskData:
        """The :class:`TaskData` of built splits (the labels of the training split)."""
        return TaskData(train, val, test, *self.split_labels(train), selected)

    def split_labels(self, dataset: Dataset) -> tuple[int, list[str], list[list[int]] | None]:
        """What a built split says about the labels: their number, the class (or
        category) names and, for part segmentation, each category's parts."""
        return dataset.num_classes, list(dataset.class_names), None

    def eval_batch_size(self, cfg: TrainConfig) -> int:
        """Samples per evaluation batch."""
        return cfg.eval_batch_size

    # -- model ---------------------------------------------------------------------
    def model_options(self, cfg: TrainConfig, data: TaskData) -> dict[str, Any]:
        """The task's keyword arguments of the registry model (sizes, inputs)."""
        return {
            "in_channels": 6 if cfg.use_normals else 3,
            "num_classes": data.num_classes,
        }

    def forward(
        self, model: nn.Module, batch: Any, *, points_per_cloud: int | None = None
    ) -> Tensor:
        """The logits of a PyG batch. ``points_per_cloud``: the points of every cloud
        when the caller knows it from the host (models that can use it read nothing back)."""
        return model(pos=batch.pos, batch=batch.batch, x=getattr(batch, "x", None))

    def predictions(
        self,
        logits: Tensor,
        batch: Any,
        category_parts: Sequence[Sequence[int]] | None = None,
    ) -> Tensor:
        """The predicted label of each target (the training accuracy's numerator)."""
        return logits.argmax(-1)

    # -- evaluation ----------------------------------------------------------------
    def meter(
        self,
        num_classes: int,
        class_names: Sequence[str] | None = None,
        category_parts: Sequence[Sequence[int]] | None = None,
    ) -> Any:
        """A fresh meter of this task (see :mod:`pointea.metrics`)."""
        from ..metrics import ClassificationMeter

        return ClassificationMeter(num_classes, class_names)

    def update(self, meter: Any, logits: Tensor, batch: Any) -> None:
        """Add one batch's logits to ``meter``."""
        meter.update(logits, batch.y.view(-1))

    def test_extras(self, data: TaskData) -> dict[str, Any]:
        """Numbers added to the test metrics besides the meter's (e.g. baselines)."""
        return {}

    def metric_lines(self, metrics: dict[str, Any], *, max_items: int = 16) -> list[str]:
        """The summary lines of ``metrics`` (headline numbers and per-class table)."""
        from .text import headline_lines

        return headline_lines(
            metrics,
            [
                ("overall accuracy", "overall_accuracy"),
                ("mean class accuracy", "mean_class_accuracy"),
            ],
            "per_class_accuracy",
            "per-class accuracy",
            max_items,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r})"
