"""A run stopped after epoch k and resumed ends exactly like an uninterrupted run (CPU)."""

from __future__ import annotations

import json

import pytest
import torch

from pointea.cli.train import main, main_seg
from pointea.datasets import ensure_synthetic
from pointea.engine import Callback, load_checkpoint

pytestmark = pytest.mark.e2e  # whole runs, interrupted and resumed

# augmentation, point dropout and head dropout all on: every random stream is exercised
# bit-identical comparisons: CPU only (CUDA's atomics are not bitwise reproducible)
CLS = ["--model", "pct_cls_tiny", "--batch-size", "4", "--num-points", "64", "--no-progress",
       "--epochs", "3", "--seed", "7", "--device", "cpu"]
SEG = ["--model", "pct_seg_tiny", "--batch-size", "4", "--num-points", "64", "--no-progress",
       "--epochs", "3", "--seed", "7", "--device", "cpu"]


def _strip_times(records):
    return [{k: v for k, v in r.items() if k != "time_s"} for r in records]


def _assert_same_run(a, b):
    ca, cb = load_checkpoint(a / "checkpoints/last.pt"), load_checkpoint(b / "checkpoints/last.pt")
    assert ca["model"].keys() == cb["model"].keys()
    for key in ca["model"]:
        assert torch.equal(ca["model"][key], cb["model"][key]), key
    sa, sb = ca["optimizer"]["state"], cb["optimizer"]["state"]
    for key in sa:
        assert torch.equal(sa[key]["momentum_buffer"], sb[key]["momentum_buffer"])
    assert ca["scheduler"] == cb["scheduler"]
    ma = [json.loads(x) for x in (a / "metrics.jsonl").read_text().splitlines()]
    mb = [json.loads(x) for x in (b / "metrics.jsonl").read_text().splitlines()]
    assert _strip_times(ma) == _strip_times(mb)
    ta = json.loads((a / "test_metrics.json").read_text())
    tb = json.loads((b / "test_metrics.json").read_text())
    assert ta == tb


class StopAfter(Callback):
    """Interrupt the run right after epoch ``epoch`` was checkpointed (like Ctrl-C)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, state, record):
        if record["epoch"] == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.parametrize("stop_after", [1, 2])
def test_classification_resume_equals_uninterrupted(stop_after, tmp_path):
    data = ensure_synthetic("modelnet40", root=tmp_path / "d", num_classes=3,
                            train_per_class=6, test_per_class=2, points=128)
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["--data-root", str(data), *CLS, "--output-dir", str(full)]) == 0
    stop = [StopAfter(stop_after)]
    assert main(["--data-root", str(data), *CLS, "--output-dir", str(part)], callbacks=stop) == 130
    assert load_checkpoint(part / "checkpoints/last.pt")["epoch"] == stop_after
    assert not (part / "test_metrics.json").exists()
    assert main(["--output-dir", str(part), "--resume", "--no-progress"]) == 0
    _assert_same_run(full, part)


def test_segmentation_resume_equals_uninterrupted(tmp_path):
    data = ensure_synthetic("shapenetpart", root=tmp_path / "d", categories=["Mug", "Chair"],
                            train_per_category=4, val_per_category=2, test_per_category=2,
                            points=96)
    full, part = tmp_path / "full", tmp_path / "part"
    assert main_seg(["--data-root", str(data), *SEG, "--output-dir", str(full)]) == 0
    argv = ["--data-root", str(data), *SEG, "--output-dir", str(part)]
    assert main_seg(argv, callbacks=[StopAfter(1)]) == 130
    assert main_seg(["--resume", str(part), "--no-progress"]) == 0
    _assert_same_run(full, part)


def test_resume_of_a_finished_run_only_redoes_the_test(tmp_path, monkeypatch, capsys):
    data = ensure_synthetic("modelnet40", root=tmp_path / "d", num_classes=3,
                            train_per_class=6, test_per_class=2, points=128)
    out = tmp_path / "run"
    argv = ["--data-root", str(data), *CLS, "--epochs", "1", "--output-dir", str(out)]
    assert main(argv) == 0
    before = (out / "test_metrics.json").read_text()
    (out / "test_metrics.json").unlink()  # as if killed before the final evaluation
    assert main(["--output-dir", str(out), "--resume", "--no-progress"]) == 0
    assert (out / "test_metrics.json").read_text() == before
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
