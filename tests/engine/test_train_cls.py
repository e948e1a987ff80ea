"""End-to-end classification runs on a tiny synthetic set (seconds)."""

from __future__ import annotations

import json

import pytest
import torch

from pointea.cli.train import main
from pointea.engine import TrainConfig, load_checkpoint, train

pytestmark = pytest.mark.e2e  # whole classification runs

# bit-identical comparisons: CPU only (CUDA's atomics are not bitwise reproducible)
TINY = ["--model", "pct_cls_tiny", "--batch-size", "4", "--num-points", "64", "--no-progress",
        "--device", "cpu"]


def test_run_writes_every_file_with_the_documented_keys(cls_root, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["--data-root", str(cls_root), *TINY, "--epochs", "2", "--output-dir", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "overall accuracy" in printed and "best epoch" in printed  # the summary

    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "modelnet40" and config["model"] == "pct_cls_tiny"
    assert config["lr"] == 0.01 and config["label_smoothing"] == 0.2  # recipe resolved
    for key in ("pointea_version", "torch_version", "torch_geometric_version"):
        assert isinstance(config[key], str)

    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    for r in lines:
        for key in ("train_loss", "train_accuracy", "val_loss", "val_overall_accuracy",
                    "val_mean_class_accuracy", "lr", "time_s"):
            assert key in r
    assert lines[1]["lr"] < lines[0]["lr"]  # cosine schedule stepped once per epoch

    test = json.loads((out / "test_metrics.json").read_text())
    assert 0.0 <= test["overall_accuracy"] <= 1.0
    assert 0.0 <= test["mean_class_accuracy"] <= 1.0
    assert set(test["per_class_accuracy"]) == {"sphere", "cube", "cylinder"}
    assert test["num_samples"] == 6 and test["split"] == "test"

    assert (out / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("last.pt", "best.pt"):
        raw = torch.load(out / "checkpoints" / name, weights_only=True)  # plain values only
        assert raw["format"] == "pointea-checkpoint" and raw["task"] == "modelnet40"
        assert raw["kind"] == "classification"
        assert not any(k.startswith("module.") for k in raw["model"])  # never DDP keys
    last = load_checkpoint(out / "checkpoints" / "last.pt")
    best = load_checkpoint(out / "checkpoints" / "best.pt")
    assert last["epoch"] == 2 and last["global_step"] > 0
    assert best["epoch"] == test["epoch"] == last["best_epoch"]
    best_val = max(r["val_overall_accuracy"] for r in lines)
    assert best["best_metric"] == pytest.approx(best_val)
    assert {"optimizer", "scheduler", "rng", "config", "class_names"} <= set(last)


def test_python_api_learns_the_tiny_set(cls_root, tmp_path):
    """The loop really optimises: without augmentation the 12 training clouds are fit."""
    cfg = TrainConfig(model="pct_cls_tiny", data_root=str(cls_root), epochs=8, batch_size=4,
                      num_points=64, output_dir=str(tmp_path / "api"), dropout=0.0,
                      augment=False, label_smoothing=0.0, device="cpu")
    result = train(cfg, progress=False)
    losses = [r["train_loss"] for r in result.history]
    assert len(losses) == 8
    assert min(losses[-3:]) < 0.7 * losses[0]
    assert max(r["train_accuracy"] for r in result.history[-3:]) >= 0.9
    assert result.best_epoch >= 1
    assert result.test_metrics["overall_accuracy"] is not None


def test_loader_workers_and_bf16(cls_root, tmp_path):
    """Augmentation is seeded per sample: worker processes change nothing; bf16 runs."""
    args = ["--data-root", str(cls_root), *TINY, "--epochs", "1"]
    assert main([*args, "--workers", "0", "--output-dir", str(tmp_path / "w0")]) == 0
    assert main([*args, "--workers", "2", "--output-dir", str(tmp_path / "w2")]) == 0
    a = load_checkpoint(tmp_path / "w0/checkpoints/last.pt")["model"]
    b = load_checkpoint(tmp_path / "w2/checkpoints/last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert main([*args, "--bf16", "--output-dir", str(tmp_path / "bf")]) == 0
    config = json.loads((tmp_path / "bf/config.json").read_text())
    assert config["bf16"] is True
