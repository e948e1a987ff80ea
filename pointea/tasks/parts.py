"""Part segmentation: one part per point, within the shape's category (ShapeNetPart)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import Task, TaskData
from .shapes import reader_options, shape_transforms
from .text import headline_lines

if TYPE_CHECKING:
    from torch import Tensor, nn
    from torch.utils.data import Dataset

    from ..engine.config import TrainConfig

__all__ = ["ShapeNetPart"]


class ShapeNetPart(Task):
    """ShapeNetPart: 16 categories, 50 parts; predictions restricted to the parts of each
    shape's category; selected on instance mIoU (dgcnn.pytorch's recipe, which PCT's
    README points to)."""

    name = "shapenetpart"
    kind = "segmentation"
    title = "ShapeNetPart part segmentation"
    model = "pct_seg"
    metric = "instance_miou"
    unit = "shapes"
    foreign_models = ("pct_cls", "pct_semseg")
    has_categories = True
    labels = "parts"
    all_points = True
    source = "dgcnn.pytorch main_partseg.py / util.py (2020-21)"
    recipe = {
        "optimizer": "sgd",
        "epochs": 200,
        "batch_size": 32,
        "num_points": 2048,
        "lr": 0.1,  # SGD; min_lr = lr / 100
        "weight_decay": 1e-4,
        "label_smoothing": 0.2,  # cal_loss(smoothing=True) of the 2020-21 util.py
        "augment": False,
        "point_dropout": 0.0,
    }

    def transforms(self, cfg: TrainConfig, train: bool) -> Callable:
        """``num_points`` drawn at random (the text clouds' sizes vary)."""
        fmt = cfg.data_format or "text"
        return shape_transforms(cfg, train, method="random", normalise=fmt in ("resampled", "text"))

    def split(self, cfg: TrainConfig, split: str, root: Path, train: bool) -> Dataset:
        from ..datasets import ShapeNetPart as Reader

        return Reader(
            root,
            split,
            categories=cfg.categories,
            **reader_options(cfg, self.transforms(cfg, train)),
        )

    def selection_split(self, cfg: TrainConfig, train: Dataset, val: Dataset) -> str:
        return "val (ShapeNetPart's own)"

    def split_labels(self, dataset: Dataset) -> tuple[int, list[str], list[list[int]] | None]:
        """Parts, category names and each category's parts."""
        parts = [list(p) for p in dataset.category_parts]
        return dataset.num_classes, list(dataset.categories), parts

    def model_options(self, cfg: TrainConfig, data: TaskData) -> dict[str, Any]:
        return {
            "in_channels": 6 if cfg.use_normals else 3,
            "num_parts": data.num_classes,
            "num_categories": len(data.category_parts or []),
        }

    def forward(
        self, model: nn.Module, batch: Any, *, points_per_cloud: int | None = None
    ) -> Tensor:
        return model(
            pos=batch.pos,
            category=batch.category.view(-1),
            batch=batch.batch,
            x=getattr(batch, "x", None),
        )

    def predictions(
        self,
        logits: Tensor,
        batch: Any,
        category_parts: Sequence[Sequence[int]] | None = None,
    ) -> Tensor:
        """The best part among the shape's category's parts (every part without them)."""
        from ..metrics import predict_parts

        if category_parts is None:
            return logits.argmax(-1)
        return predict_parts(logits, batch.category.view(-1), category_parts, batch.batch)

    def meter(
        self,
        num_classes: int,
        class_names: Sequence[str] | None = None,
        category_parts: Sequence[Sequence[int]] | None = None,
    ) -> Any:
        from ..errors import InputError
        from ..metrics import SegmentationMeter

        if category_parts is None:
            raise InputError("part segmentation needs the parts of each category")
        return SegmentationMeter(category_parts, class_names)

    def update(self, meter: Any, logits: Tensor, batch: Any) -> None:
        meter.update(logits, batch.y.view(-1), batch.category.view(-1), batch.batch)

    def metric_lines(self, metrics: dict[str, Any], *, max_items: int = 16) -> list[str]:
        return headline_lines(
            metrics,
            [("instance mIoU", "instance_miou"), ("class mIoU", "class_miou")],
            "per_category_iou",
            "per-category IoU",
            max_items,
        )
