"""Training as the references did: per-task recipes, per-epoch point order, protocols."""

from __future__ import annotations

import json

import pytest
import torch

from pointea.cli.train import main, main_seg
from pointea.datasets import ensure_synthetic
from pointea.engine import TrainConfig, load_checkpoint
from pointea.engine.data import build_split, build_task_data
from pointea.engine.seeding import EpochSeededDataset
from pointea.ops import farthest_point_sample, layout_of

TINY = ["--model", "pct_cls_tiny", "--batch-size", "4", "--num-points", "64", "--no-progress",
        "--device", "cpu"]


def test_recipes_differ_per_task_as_the_references():
    cls = TrainConfig(task="modelnet40").resolved()
    seg = TrainConfig(task="shapenetpart").resolved()
    assert (cls.lr, cls.min_lr, cls.weight_decay, cls.epochs, cls.batch_size) == (
        0.01, 1e-4, 5e-4, 250, 32)
    assert (cls.augment, cls.point_dropout, cls.label_smoothing) == (True, 0.875, 0.2)
    assert (seg.lr, seg.min_lr, seg.weight_decay, seg.epochs, seg.batch_size) == (
        0.1, 1e-3, 1e-4, 200, 32)
    assert (seg.augment, seg.point_dropout, seg.label_smoothing) == (False, 0.0, 0.2)
    assert cls.shuffle_points and seg.shuffle_points and cls.protocol == "validation"
    assert TrainConfig(task="shapenetpart", optimizer="adam").resolved().lr == 1e-3
    # an explicit value always wins over the recipe
    assert TrainConfig(task="shapenetpart", weight_decay=0.0, epochs=3).resolved().epochs == 3


def _centres(sample, num=16):
    pos = sample.pos
    index, _ = farthest_point_sample(pos, layout_of(None, pos.size(0), pos.device), num)
    return pos[index]


def test_fps_centres_change_per_training_epoch_and_not_in_evaluation(cls_root):
    cfg = TrainConfig(data_root=str(cls_root), num_points=64, augment=False).resolved()
    train = EpochSeededDataset(build_split(cfg, "train"), seed=0)
    train.set_epoch(1)
    s1 = train[0]
    e1, e1_again = _centres(s1), _centres(train[0])
    train.set_epoch(2)
    s2 = train[0]
    e2 = _centres(s2)
    assert torch.equal(e1, e1_again)  # seeded: the same epoch gives the same order
    assert not torch.equal(e1, e2)  # a new epoch: other centres
    # without augmentation the cloud is the same set of points, only in another order
    assert not torch.equal(s1.pos, s2.pos)
    assert torch.equal(s1.pos.sort(0).values, s2.pos.sort(0).values)

    test = build_split(cfg, "test")
    wrapped = EpochSeededDataset(test, seed=0)
    wrapped.set_epoch(1)
    a = _centres(wrapped[0])
    wrapped.set_epoch(2)
    b = _centres(wrapped[0])
    assert torch.equal(a, b) and torch.equal(a, _centres(test[0]))
    # evaluation keeps the file order: FPS starts at the file's first point
    assert torch.equal(a[0], test[0].pos[0])

    off = TrainConfig(data_root=str(cls_root), num_points=64, augment=False,
                      shuffle_points=False).resolved()
    plain = EpochSeededDataset(build_split(off, "train"), seed=0)
    plain.set_epoch(1)
    p1 = _centres(plain[0])
    plain.set_epoch(2)
    assert torch.equal(p1, _centres(plain[0]))


@pytest.mark.e2e
def test_full_train_uses_every_training_shape_and_keeps_the_last_epoch(cls_root, tmp_path):
    cfg = TrainConfig(data_root=str(cls_root), num_points=64)
    val_data = build_task_data(cfg.resolved())
    full_data = build_task_data(TrainConfig(data_root=str(cls_root), num_points=64,
                                            protocol="full-train").resolved())
    assert len(full_data.train) == len(val_data.train) + len(val_data.val) == 18

    out = tmp_path / "full"
    assert main(["--data-root", str(cls_root), *TINY, "--epochs", "2", "--protocol",
                 "full-train", "--output-dir", str(out)]) == 0
    test = json.loads((out / "test_metrics.json").read_text())
    assert test["protocol"] == "full-train" and test["epoch"] == 2
    assert test["val_overall_accuracy"] is None and "full-train" in test["selected_on"]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["val_loss"] for r in lines] == [None, None]  # never scored, never selected
    assert load_checkpoint(out / "checkpoints/best.pt")["epoch"] == 2

    val_out = tmp_path / "val"
    assert main(["--data-root", str(cls_root), *TINY, "--epochs", "1",
                 "--output-dir", str(val_out)]) == 0
    assert json.loads((val_out / "test_metrics.json").read_text())["protocol"] == "validation"


@pytest.mark.e2e
def test_segmentation_full_train_trains_on_train_plus_val(tmp_path, capsys):
    data = ensure_synthetic("shapenetpart", root=tmp_path / "d", categories=["Mug", "Chair"],
                            train_per_category=3, val_per_category=2, test_per_category=1,
                            points=64)
    cfg = TrainConfig(task="shapenetpart", data_root=str(data), num_points=32,
                      protocol="full-train").resolved()
    assert len(build_task_data(cfg).train) == 10
    out = tmp_path / "run"
    assert main_seg(["--data-root", str(data), "--model", "pct_seg_tiny", "--batch-size", "4",
                     "--num-points", "32", "--epochs", "1", "--no-progress", "--device", "cpu",
                     "--protocol", "full-train", "--output-dir", str(out)]) == 0
    assert "protocol full-train" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert (config["lr"], config["weight_decay"], config["augment"]) == (0.1, 1e-4, False)
