"""Shape classification: one label per cloud (ModelNet40)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .base import Task

if TYPE_CHECKING:
    from torch import Tensor, nn
    from torch.utils.data import Dataset

    from ..engine.config import TrainConfig

__all__ = [
    "ModelNet40",
    "ScanObjectNN",
    "ShapeClassification",
    "reader_options",
    "shape_transforms",
]


def shape_transforms(cfg: TrainConfig, train: bool, *, method: str, normalise: bool) -> Callable:
    """The per-sample transform of a split of single shapes.

    ``normalise``: centre and scale into the unit sphere first (the text archives are not
    normalised on disk; the HDF5 ones are). ``method``: how ``num_points`` points are
    taken (``"first"``: the file's first ones; ``"random"``: drawn, smaller clouds padded
    by repetition). Training adds PCT's per-axis scale + shift and, when
    ``point_dropout`` > 0, random point dropout (``augment``), then a random order of the
    points (``shuffle_points``, last, as the reference loader does: farthest point
    sampling then starts at a random point). Evaluation keeps the file order.
    """
    from torch_geometric.transforms import Compose

    from .. import transforms as T

    steps: list[Callable] = []
    if normalise:
        steps.append(T.NormalizeUnitSphere())
    steps.append(T.SubsamplePoints(cfg.num_points, method=method))
    if train and cfg.augment:
        steps.append(T.PCTScaleShift())
        if cfg.point_dropout:
            steps.append(T.RandomPointDropout(cfg.point_dropout))
    if train and cfg.shuffle_points:
        steps.append(T.RandomPermute())
    return Compose(steps)


class ShapeClassification(Task):
    """Shape classification: one label per cloud, scored by overall accuracy."""

    kind = "classification"
    model = "pct_cls"
    metric = "overall_accuracy"
    unit = "clouds"
    foreign_models = ("pct_seg", "pct_semseg")

    def transforms(self, cfg: TrainConfig, train: bool) -> Callable:
        """The transform of a split (the HDF5 clouds' first ``num_points`` points)."""
        fmt = cfg.data_format or "hdf5"
        return shape_transforms(cfg, train, method="first", normalise=fmt in ("resampled", "text"))

    def selection_split(self, cfg: TrainConfig, train: Dataset, val: Dataset) -> str:
        return f"val ({cfg.val_fraction:.0%} of train, split seed {cfg.split_seed})"

    def forward(
        self, model: nn.Module, batch: Any, *, points_per_cloud: int | None = None
    ) -> Tensor:
        """The logits, with the sampling computed in the loader's workers when the batch
        carries it (:mod:`pointea.nn.sampling_plan`) and the clouds' size from the host."""
        from ..nn.sampling_plan import plan_of

        kw: dict[str, Any] = {}
        plan = plan_of(batch)
        if plan is not None:
            kw["sampling"] = plan
        if points_per_cloud is not None:
            kw["points_per_cloud"] = points_per_cloud
        return model(pos=batch.pos, batch=batch.batch, x=getattr(batch, "x", None), **kw)


class ModelNet40(ShapeClassification):
    """ModelNet40: 40 classes of CAD shapes (PCT_Pytorch's recipe)."""

    name = "modelnet40"
    title = "ModelNet40 shape classification"
    source = "PCT_Pytorch main.py / data.py / util.py"
    recipe = {
        "optimizer": "sgd",
        "epochs": 250,
        "batch_size": 32,
        "num_points": 1024,
        "lr": 0.01,  # SGD; min_lr = lr / 100
        "weight_decay": 5e-4,
        "label_smoothing": 0.2,
        "augment": True,  # point dropout, scale + shift
        "point_dropout": 0.875,
    }

    def split(self, cfg: TrainConfig, split: str, root: Path, train: bool) -> Dataset:
        from ..datasets import ModelNet40 as Reader

        return Reader(
            root,
            split,
            val_fraction=cfg.val_fraction,
            split_seed=cfg.split_seed,
            **reader_options(cfg, self.transforms(cfg, train)),
        )


class ScanObjectNN(ShapeClassification):
    """ScanObjectNN: 15 classes of real scanned objects (PointMLP's recipe; the variant
    PB_T50_RS by default, ``--variant`` for OBJ_BG / OBJ_ONLY; docs/SCANOBJECTNN.md)."""

    name = "scanobjectnn"
    title = "ScanObjectNN object classification (real scans)"
    source = "pointMLP-pytorch classification_ScanObjectNN main.py / ScanObjectNN.py"
    variants = ("pb_t50_rs", "obj_bg", "obj_only")
    refused = {
        **ShapeClassification.refused,
        "data_format": "scanobjectnn reads the published h5 files only",
    }
    recipe = {
        "optimizer": "sgd",
        "epochs": 200,
        "batch_size": 32,
        "num_points": 1024,  # the first 1024 of the 2048 points
        "lr": 0.01,  # SGD; min_lr = lr / 100
        "weight_decay": 1e-4,
        "label_smoothing": 0.2,  # cal_loss(smoothing=True)
        "augment": True,  # scale U[2/3, 3/2] + shift U[-0.2, 0.2], no point dropout
        "point_dropout": 0.0,
    }

    def problems(self, cfg: TrainConfig) -> list[str]:
        problems = super().problems(cfg)
        if cfg.use_normals:
            problems.append("use_normals (--normals): ScanObjectNN's h5 files hold no normals")
        if cfg.download:
            from ..datasets.scanobjectnn import HOME

            problems.append(
                f"download (--download): ScanObjectNN is given out after accepting its terms "
                f"of use ({HOME}); download h5_files.zip by hand, or use --synthetic"
            )
        return problems

    def download_hint(self, cfg: TrainConfig) -> str:
        return "Or train on the offline procedural stand-in with --synthetic."

    def transforms(self, cfg: TrainConfig, train: bool) -> Callable:
        """The file's first ``num_points`` points (the h5 objects are normalised)."""
        return shape_transforms(cfg, train, method="first", normalise=False)

    def stand_in(self, cfg: TrainConfig) -> Path:
        from ..datasets.synthetic.scanobjectnn import write_scanobjectnn

        return write_scanobjectnn(cfg.data_root or "data/scanobjectnn", reuse=True)

    def split(self, cfg: TrainConfig, split: str, root: Path, train: bool) -> Dataset:
        from ..datasets import ScanObjectNN as Reader

        return Reader(
            root,
            split,
            variant=cfg.variant or self.variants[0],
            val_fraction=cfg.val_fraction,
            split_seed=cfg.split_seed,
            transform=self.transforms(cfg, train),
        )


def reader_options(cfg: TrainConfig, transform: Callable) -> dict[str, Any]:
    """The keyword arguments the shape readers share."""
    options: dict[str, Any] = {
        "transform": transform,
        "use_normals": cfg.use_normals,
        "download": cfg.download,
    }
    if cfg.data_format:
        options["format"] = cfg.data_format
    return options
