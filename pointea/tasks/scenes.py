"""Scene semantic segmentation: one class per point of a whole room (S3DIS)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import Task, TaskData

if TYPE_CHECKING:
    from torch import Tensor, nn
    from torch.utils.data import Dataset

    from ..engine.config import TrainConfig

__all__ = ["S3DIS"]

_NO_SHAPE_TRANSFORMS = (
    "s3dis draws fresh random room samples every step and applies no shape augmentation"
)


class S3DIS(Task):
    """S3DIS: 13 classes of indoor rooms, six areas; training on random samples of whole
    rooms, evaluation on every point of each room in one exact pass (pointea's own
    recipe, docs/SCENES.md)."""

    name = "s3dis"
    kind = "semseg"
    title = "S3DIS scene semantic segmentation"
    model = "pct_semseg"
    metric = "mean_iou"
    unit = "rooms"
    source = "pointea's own (docs/SCENES.md)"
    foreign_models = ("pct_cls", "pct_seg")
    votes = False
    whole_scenes = True
    refused = {
        "augment": _NO_SHAPE_TRANSFORMS,
        "point_dropout": _NO_SHAPE_TRANSFORMS,
        "shuffle_points": _NO_SHAPE_TRANSFORMS,
        "data_format": "s3dis reads the published room text files (through its .npz cache) only",
    }
    recipe = {
        "optimizer": "adamw",  # AdamW: the usual optimiser of point transformers on S3DIS
        "epochs": 20,
        "steps_per_epoch": 20,  # each step draws batch_size random rooms
        "batch_size": 4,
        "num_points": 4096,  # PointNet / DGCNN S3DIS sample size
        "lr": 2e-3,
        "weight_decay": 1e-4,
        "label_smoothing": 0.0,
        "augment": False,
        "point_dropout": 0.0,
    }

    def problems(self, cfg: TrainConfig) -> list[str]:
        problems = []
        if cfg.categories is not None:
            problems.append("categories (--categories) only applies to part segmentation")
        if cfg.variant is not None:
            problems.append(f"variant (--variant): task {self.name} has no variants")
        if cfg.download:
            problems.append(
                "download (--download): S3DIS is distributed behind a form "
                "(http://buildingparser.stanford.edu/dataset.html); download it by hand, or "
                "use --synthetic"
            )
        if cfg.use_normals:
            problems.append("use_normals (--normals): S3DIS rooms have no normals")
        # the split takes every round(1 / val_fraction)-th room for validation
        every = round(1 / cfg.val_fraction) if 0 < cfg.val_fraction < 1 else 2
        if cfg.protocol == "validation" and every < 2:
            problems.append(
                f"val_fraction (--val-fraction) {cfg.val_fraction} makes every training-"
                "area room a validation room and leaves none to train on; use at most 0.66"
            )
        if cfg.model is not None and not self.accepts_model(cfg.model):
            problems.append(f"model {cfg.model!r} is not a scene (semseg) model")
        return problems

    def download_hint(self, cfg: TrainConfig) -> str:
        return "Or train on the offline procedural rooms with --synthetic."

    def stand_in(self, cfg: TrainConfig) -> Path:
        """Procedural rooms in the S3DIS layout (written on first use, under
        ``data/rooms`` unless ``data_root`` says otherwise)."""
        from ..datasets.synthetic.rooms import write_rooms

        root = Path(cfg.data_root or "data/rooms")
        write_rooms(
            root,
            rooms_per_area=cfg.synthetic_rooms_per_area,
            density=cfg.synthetic_density,
            seed=cfg.split_seed,
        )
        return root

    def split(self, cfg: TrainConfig, split: str, root: Path, train: bool) -> Dataset:
        """The rooms of ``split``; training splits as :class:`RoomSamples` of
        ``steps_per_epoch x batch_size`` random samples per epoch."""
        from ..datasets import S3DIS as Reader
        from ..datasets.room_samples import RoomSamples
        from ..errors import InputError

        rooms = Reader(root, split, cfg.test_area, cfg.val_fraction)
        if not train:
            return rooms
        if split == "train" and len(rooms) == 0 and len(Reader(root, "trainval", cfg.test_area)):
            raise InputError(
                f"--val-fraction {cfg.val_fraction} leaves no training room: every room of "
                "the training areas is a validation room; lower it or use --protocol full-train"
            )
        return RoomSamples(rooms, cfg.num_points, cfg.steps_per_epoch * cfg.batch_size)

    def selection_split(self, cfg: TrainConfig, train: Dataset, val: Dataset) -> str:
        from ..errors import InputError

        if len(val) == 0:
            raise InputError(
                f"--val-fraction {cfg.val_fraction} leaves no validation room among the "
                f"training areas' {len(train.rooms)} rooms; raise it or use --protocol full-train"
            )
        return f"val ({len(val)} rooms of the training areas, never Area {cfg.test_area})"

    def split_labels(self, dataset: Dataset) -> tuple[int, list[str], list[list[int]] | None]:
        """The 13 S3DIS classes (every split has them all)."""
        from ..datasets.s3dis import CLASSES

        return len(CLASSES), list(CLASSES), None

    def eval_batch_size(self, cfg: TrainConfig) -> int:
        return 1  # whole rooms, one at a time

    def model_options(self, cfg: TrainConfig, data: TaskData) -> dict[str, Any]:
        # the model's own input channels: xyz, rgb, location in the room
        return {"num_classes": data.num_classes}

    def forward(
        self, model: nn.Module, batch: Any, *, points_per_cloud: int | None = None
    ) -> Tensor:
        return model(pos=batch.pos, x=getattr(batch, "x", None), batch=batch.batch)

    def meter(
        self,
        num_classes: int,
        class_names: Sequence[str] | None = None,
        category_parts: Sequence[Sequence[int]] | None = None,
    ) -> Any:
        from ..metrics import SemSegMeter

        return SemSegMeter(num_classes, class_names)

    def test_extras(self, data: TaskData) -> dict[str, Any]:
        """The floor to beat: the training rooms' most frequent class everywhere."""
        from ..metrics import majority_baseline

        train_rooms = getattr(data.train, "rooms", data.train)
        return {
            "majority_baseline": majority_baseline(
                train_rooms.class_counts(), data.test.class_counts(), data.class_names
            )
        }

    def metric_lines(self, metrics: dict[str, Any], *, max_items: int = 16) -> list[str]:
        """OA / mAcc / mIoU of the whole-room pass, block voting and the majority class,
        then the per-class IoU of the whole-room pass."""
        from .text import pct

        lines = []
        for key, label in (
            (None, "whole rooms, exact"),
            ("block_vote", "1 m blocks + voting"),
            ("majority_baseline", "majority class"),
        ):
            m = metrics if key is None else metrics.get(key)
            if isinstance(m, dict):
                lines.append(
                    f"  {label:<20} OA {pct(m.get('overall_accuracy'))}  mAcc "
                    f"{pct(m.get('mean_class_accuracy'))}  mIoU {pct(m.get('mean_iou'))}"
                )
        names, ious = metrics.get("class_names") or [], metrics.get("per_class_iou") or []
        cells = [
            f"{n[:10]:>10} {100 * v:5.1f}"
            for n, v in zip(names, ious, strict=False)
            if v is not None
        ]
        if cells and max_items > 0:
            lines.append("  per-class IoU (whole rooms):")
            lines += ["   " + "  ".join(cells[i : i + 4]) for i in range(0, len(cells), 4)]
        return lines
