"""Runtime behaviour of the engine: RNG isolation, display independence, logs, TF32,
persistent workers, batch-size guards, TensorBoard."""

from __future__ import annotations

import io
import json
import os
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from pointea.cli.train import main
from pointea.engine import TensorBoardLogger, load_checkpoint
from pointea.engine.data import make_loader
from pointea.engine.precision import CUBLAS_WORKSPACE, deterministic, tf32
from pointea.engine.seeding import EpochSeededDataset

TINY = ["--model", "pct_cls_tiny", "--batch-size", "4", "--num-points", "64", "--device", "cpu"]


class _Draw(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.rand(2), np.random.rand(), torch.randn(1)


def test_per_sample_seeding_touches_only_the_cpu_generators(monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "manual_seed", lambda *a: calls.append("torch.manual_seed"))
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda *a: calls.append("cuda"))
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda *a: calls.append("cuda"))
    ds = EpochSeededDataset(_Draw(), seed=5)
    torch.default_generator.manual_seed(123)
    outer = torch.get_rng_state()
    np.random.seed(9)
    np_outer = np.random.get_state()[1].copy()
    a, b = ds[1], ds[1]
    assert torch.equal(a[0], b[0]) and a[1] == b[1]  # the sample's own stream, repeatable
    assert not torch.equal(ds[0][0], a[0])
    assert calls == []  # neither torch.manual_seed (it reseeds CUDA) nor CUDA itself
    assert torch.equal(torch.get_rng_state(), outer)  # the outer streams are put back
    assert (np.random.get_state()[1] == np_outer).all()


@pytest.mark.e2e
def test_epoch_reaches_persistent_workers():
    ds = EpochSeededDataset(_Draw(), seed=1)
    loader = make_loader(ds, batch_size=4, sampler=range(4), workers=1, device=torch.device("cpu"))
    assert loader.persistent_workers
    seen = []
    for epoch in (1, 2, 1):
        ds.set_epoch(epoch)
        seen.append(next(iter(loader))[0])
    assert torch.equal(seen[0], seen[2]) and not torch.equal(seen[0], seen[1])


def _tf32_state():
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):  # the switches pointea sets on this torch
        return matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision
    return matmul.allow_tf32, torch.backends.cudnn.allow_tf32


def test_tf32_is_set_for_cuda_runs_only_and_put_back(recwarn):
    new_api = hasattr(torch.backends.cuda.matmul, "fp32_precision")
    on, off = (("tf32", "tf32"), ("ieee", "ieee")) if new_api else ((True, True), (False, False))
    before = _tf32_state()
    with tf32(True, torch.device("cpu")):
        assert _tf32_state() == before
    for enabled in (True, False):
        with tf32(enabled, torch.device("cuda")):  # flags only: no GPU needed
            assert _tf32_state() == (on if enabled else off)
        assert _tf32_state() == before
    # never the deprecated flags where the new switches exist
    assert not new_api or not [w for w in recwarn if "allow_tf32" in str(w.message)]


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _params(out):
    return load_checkpoint(out / "checkpoints/last.pt")["model"]


@pytest.mark.e2e
def test_progress_bars_do_not_change_training(cls_root, tmp_path, monkeypatch):
    args = ["--data-root", str(cls_root), *TINY, "--epochs", "2"]
    terminal = _Terminal()
    with monkeypatch.context() as m:
        m.setattr(sys, "stderr", terminal)
        assert main([*args, "--progress", "--output-dir", str(tmp_path / "bars")]) == 0
    assert "epoch 1/2 train" in terminal.getvalue()  # the bars were really drawn
    assert main([*args, "--no-progress", "--output-dir", str(tmp_path / "plain")]) == 0
    a, b = _params(tmp_path / "bars"), _params(tmp_path / "plain")
    assert all(torch.equal(a[k], b[k]) for k in a)
    ma = (tmp_path / "bars/metrics.jsonl").read_text().splitlines()
    mb = (tmp_path / "plain/metrics.jsonl").read_text().splitlines()
    strip = [{k: v for k, v in json.loads(x).items() if k != "time_s"} for x in ma]
    assert strip == [{k: v for k, v in json.loads(x).items() if k != "time_s"} for x in mb]


@pytest.mark.e2e
def test_log_to_a_file_is_one_line_per_epoch(cls_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "--data-root",
                str(cls_root),
                *TINY,
                "--epochs",
                "2",
                "--progress",
                "--output-dir",
                str(out),
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "\r" not in captured.err and "\r" not in captured.out  # not a terminal: no bars
    epoch_lines = [x for x in captured.out.splitlines() if x.startswith("epoch ")]
    assert len(epoch_lines) == 2


def test_batch_size_one_is_refused_with_one_line(cls_root, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "--data-root",
                str(cls_root),
                *TINY,
                "--batch-size",
                "1",
                "--output-dir",
                str(tmp_path / "r"),
            ]
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "batch_size must be >= 2" in err and "BatchNorm" in err and "Traceback" not in err


@pytest.mark.e2e
def test_a_last_batch_of_one_cloud_is_dropped(cls_root, tmp_path):
    # 18 training shapes under full-train; batch 17 leaves a last batch of 1
    out = tmp_path / "run"
    assert (
        main(
            [
                "--data-root",
                str(cls_root),
                *TINY,
                "--batch-size",
                "17",
                "--epochs",
                "1",
                "--protocol",
                "full-train",
                "--no-progress",
                "--output-dir",
                str(out),
            ]
        )
        == 0
    )
    assert load_checkpoint(out / "checkpoints/last.pt")["global_step"] == 1


@pytest.mark.e2e
def test_tensorboard_logs_each_epoch(cls_root, tmp_path):
    out = tmp_path / "run"
    assert (
        main(
            [
                "--data-root",
                str(cls_root),
                *TINY,
                "--epochs",
                "2",
                "--no-progress",
                "--tensorboard",
                "--output-dir",
                str(out),
            ]
        )
        == 0
    )
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2]
    assert "test/overall_accuracy" in acc.Tags()["scalars"]


def test_tensorboard_missing_is_a_clear_error(cls_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(Exception, match="pip install tensorboard"):
        TensorBoardLogger()
    rc = main(
        [
            "--data-root",
            str(cls_root),
            *TINY,
            "--epochs",
            "1",
            "--no-progress",
            "--tensorboard",
            "--output-dir",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "pip install tensorboard" in err and "Traceback" not in err


def test_deterministic_sets_the_algorithms_and_cublas_and_puts_them_back(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    with deterministic(False):
        assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    with deterministic(True):
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_WORKSPACE
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark) == before
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # the user's value is kept
    with deterministic(True):
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


@pytest.mark.e2e
def test_deterministic_run_trains_and_matches_a_plain_run_on_cpu(cls_root, tmp_path):
    runs = {}
    for flag in ([], ["--deterministic"]):
        out = tmp_path / ("det" if flag else "plain")
        args = ["--data-root", str(cls_root), *TINY, "--epochs", "1", "--no-progress"]
        assert main([*args, *flag, "--output-dir", str(out)]) == 0
        runs[bool(flag)] = load_checkpoint(out / "checkpoints/last.pt")["model"]
    assert json.loads((tmp_path / "det" / "config.json").read_text())["deterministic"] is True
    # the CPU kernels pointea uses are deterministic already: the same weights
    assert all(torch.equal(runs[True][k], runs[False][k]) for k in runs[False])
    assert not torch.are_deterministic_algorithms_enabled()
