"""Run faults: non-finite loss, full disk mid-run, SIGKILL at random moments."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import pointea.serialization as serialization
from pointea.cli.train import main
from pointea.engine import Callback, load_checkpoint

# bit-identical comparisons: CPU only (CUDA's atomics are not bitwise reproducible)
TINY = ["--model", "pct_cls_tiny", "--batch-size", "4", "--num-points", "64", "--no-progress",
        "--seed", "3", "--device", "cpu"]


class NanOnTrainingCall(Callback):
    """Make the ``call``-th training forward pass return NaN logits."""

    def __init__(self, call: int):
        self.call, self.count = call, 0

    def on_forward_end(self, state, batch, logits):
        self.count += 1
        return logits * float("nan") if self.count == self.call else None


def _steps_per_epoch(out):
    return load_checkpoint(out / "checkpoints/last.pt")["global_step"]


@pytest.mark.e2e
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(cls_root, tmp_path, capsys):
    probe = tmp_path / "probe"
    assert main(["--data-root", str(cls_root), *TINY, "--epochs", "1",
                 "--output-dir", str(probe)]) == 0
    steps = _steps_per_epoch(probe)
    out = tmp_path / "run"
    nan = [NanOnTrainingCall(steps + 2)]  # epoch 2, step 2
    rc = main(["--data-root", str(cls_root), *TINY, "--epochs", "3", "--output-dir", str(out)],
              callbacks=nan)
    err = capsys.readouterr().err
    assert rc == 1
    assert f"non-finite training loss (nan) at epoch 2, step 2/{steps}" in err
    assert "last.pt (epoch 1), is kept" in err and "--skip-nonfinite" in err
    assert load_checkpoint(out / "checkpoints/last.pt")["epoch"] == 1
    assert not (out / "test_metrics.json").exists()


@pytest.mark.e2e
def test_skip_nonfinite_skips_the_batch_and_finishes(cls_root, tmp_path):
    out = tmp_path / "run"
    rc = main(["--data-root", str(cls_root), *TINY, "--epochs", "2", "--skip-nonfinite",
               "--output-dir", str(out)], callbacks=[NanOnTrainingCall(2)])
    assert rc == 0
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["skipped_batches"] for r in lines] == [1, 0]
    ck = load_checkpoint(out / "checkpoints/last.pt")
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


@pytest.mark.e2e
def test_full_disk_during_a_run_is_a_clear_error(cls_root, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real, calls = serialization.torch.save, {"n": 0}

    def save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:  # epoch 1 wrote best.pt and last.pt; then the disk is full
            f.write(b"partial")
            raise OSError(28, "No space left on device")
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(serialization.torch, "save", save)
    rc = main(["--data-root", str(cls_root), *TINY, "--epochs", "3", "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert rc == 1
    assert "could not save checkpoint" in err and "No space left on device" in err
    assert "intact" in err
    monkeypatch.undo()
    assert load_checkpoint(out / "checkpoints/last.pt")["epoch"] == 1
    assert load_checkpoint(out / "checkpoints/best.pt")["epoch"] == 1


def test_unwritable_output_folder_is_a_clear_error(cls_root, tmp_path, monkeypatch, capsys):
    import pointea.engine.rundir as rundir

    def denied(path, write):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(rundir, "atomic_write", denied)
    out = tmp_path / "run"
    rc = main(["--data-root", str(cls_root), *TINY, "--epochs", "1", "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"could not write {out / 'config.json'}: Permission denied" in err
    assert "Traceback" not in err


# -- SIGKILL ---------------------------------------------------------------------------
DRIVER = textwrap.dedent(
    """
    import os, signal, sys
    import pointea.serialization as s

    kill_at = int(sys.argv[1])
    real, calls = s.torch.save, [0]

    def save(obj, f, *args, **kwargs):
        calls[0] += 1
        if calls[0] == kill_at:  # die half-way through writing this checkpoint
            f.write(b"half a checkpoint")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return real(obj, f, *args, **kwargs)

    s.torch.save = save
    from pointea.cli.train import main
    sys.exit(main(sys.argv[2:]))
    """
)


def _driver(tmp_path, kill_at, argv):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), str(kill_at), *argv], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _params(out):
    return load_checkpoint(out / "checkpoints/last.pt")["model"]


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_matches(cls_root, tmp_path):
    args = ["--data-root", str(cls_root), *TINY, "--epochs", "6"]
    full = tmp_path / "full"
    assert _driver(tmp_path, 0, [*args, "--output-dir", str(full)]).wait(timeout=300) == 0

    out = tmp_path / "killed"
    # 1: killed in the middle of writing epoch 2's first checkpoint file
    proc = _driver(tmp_path, 3, [*args, "--output-dir", str(out)])
    assert proc.wait(timeout=300) == -signal.SIGKILL
    assert list((out / "checkpoints").glob(".*.tmp"))  # the half-written temporary
    assert load_checkpoint(out / "checkpoints/last.pt")["epoch"] == 1  # complete, loadable
    resume = ["--output-dir", str(out), "--resume", "--no-progress"]
    # 2-3: resumed runs killed at random moments once they have made progress
    rng = random.Random(0)
    metrics = out / "metrics.jsonl"
    for _ in range(2):
        done = len(metrics.read_text().splitlines())
        proc = _driver(tmp_path, 0, resume)
        deadline = time.time() + 120
        while len(metrics.read_text().splitlines()) <= done and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL  # it was still running
        ck = load_checkpoint(out / "checkpoints/last.pt")  # complete every time
        assert ck["epoch"] > done - 1
        records = [json.loads(x) for x in metrics.read_text().splitlines() if x.endswith("}")]
        assert [r["epoch"] for r in records][:ck["epoch"]] == list(range(1, ck["epoch"] + 1))
    proc = _driver(tmp_path, 0, resume)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    assert not list((out / "checkpoints").glob(".*.tmp"))

    a, b = _params(full), _params(out)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    strip = lambda p: [{k: v for k, v in json.loads(x).items() if k != "time_s"}  # noqa: E731
                       for x in p.read_text().splitlines()]
    assert strip(full / "metrics.jsonl") == strip(out / "metrics.jsonl")
    assert (json.loads((full / "test_metrics.json").read_text())
            == json.loads((out / "test_metrics.json").read_text()))
