"""End-to-end part-segmentation run on a tiny synthetic ShapeNetPart set (seconds)."""

from __future__ import annotations

import json

import pytest

from pointea.cli.train import main, main_seg
from pointea.datasets import ensure_synthetic
from pointea.engine import load_checkpoint

pytestmark = pytest.mark.e2e  # whole part-segmentation runs

TINY = ["--model", "pct_seg_tiny", "--batch-size", "4", "--num-points", "64", "--no-progress"]


@pytest.fixture(scope="module")
def seg_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg_data")
    return ensure_synthetic("shapenetpart", root=root, categories=["Mug", "Chair"],
                            train_per_category=4, val_per_category=2, test_per_category=2,
                            points=96)


def test_seg_run_writes_the_segmentation_keys(seg_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert main_seg(["--data-root", str(seg_root), *TINY, "--epochs", "2",
                     "--output-dir", str(out)]) == 0
    assert "instance mIoU" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "shapenetpart" and config["label_smoothing"] == 0.2
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"val_instance_miou", "val_class_miou", "val_loss"} <= set(lines[0])
    test = json.loads((out / "test_metrics.json").read_text())
    assert 0.0 <= test["instance_miou"] <= 1.0 and 0.0 <= test["class_miou"] <= 1.0
    per = test["per_category_iou"]
    assert len(per) == 16  # the whole table; categories without shapes are null
    assert per["Mug"] is not None and per["Chair"] is not None and per["Airplane"] is None
    assert test["class_miou"] == pytest.approx((per["Mug"] + per["Chair"]) / 2)
    assert test["num_shapes"] == 4
    ck = load_checkpoint(out / "checkpoints/best.pt")
    assert (ck["task"], ck["kind"]) == ("shapenetpart", "segmentation")
    assert ck["model_config"]["num_parts"] == 50


def test_train_accepts_task_shapenetpart_too(seg_root, tmp_path):
    out = tmp_path / "run"
    assert main(["--task", "shapenetpart", "--data-root", str(seg_root), *TINY,
                 "--epochs", "1", "--output-dir", str(out)]) == 0
    assert "instance_miou" in json.loads((out / "test_metrics.json").read_text())


def test_resuming_a_classification_run_as_segmentation_is_refused(seg_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert main_seg(["--data-root", str(seg_root), *TINY, "--epochs", "1",
                     "--output-dir", str(out)]) == 0
    rc = main(["--task", "modelnet40", "--output-dir", str(out), "--resume", "--no-progress"])
    assert rc == 2
    assert "task: run has 'shapenetpart', given 'modelnet40'" in capsys.readouterr().err
