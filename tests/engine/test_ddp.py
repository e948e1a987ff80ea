"""torchrun with 2 gloo processes on CPU == 1 process on the combined batch.

Exactness, and how it is obtained honestly:

* BatchNorm: with ``--sync-bn`` (default) each BatchNorm becomes a
  :class:`~pointea.engine.distributed.DistributedBatchNorm`, whose batch statistics are
  all-reduced across the processes (torch's SyncBatchNorm refuses CPU tensors), so both
  processes normalise with the statistics of the combined batch, as the single process does.
* Augmentation is seeded per sample from (seed, epoch, index): the same clouds come out
  of the loader whichever process reads them.
* Dropout masks come from each process's own RNG stream and cannot match the single
  process's; the test turns the head dropout off (``--dropout 0``).
* The clouds are Gaussian noise, with point dropout off. Clouds with duplicated points
  (point dropout copies the first point) or symmetric shapes create exact ties in FPS,
  kNN and max pooling; float rounding that depends on the batch layout then breaks the
  ties differently and routes gradients elsewhere. That happens in one process too:
  merely reversing the order of the clouds of a synthetic batch changes some gradients
  by several percent. Tie-free clouds make the comparison meaningful.
* The remaining difference is float summation order (gradient all-reduce, per-process
  threads), hence ``allclose`` rather than bitwise equality.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from pointea_testing import write_modelnet_hdf5

from pointea.engine import DistributedBatchNorm, load_checkpoint


def _run(argv, nproc, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc == 1:
        cmd = [sys.executable, "-m", "pointea.cli.train", *argv]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1",
               f"--nproc_per_node={nproc}", "-m", "pointea.cli.train", *argv]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_two_gloo_processes_equal_one_process_on_the_combined_batch(tmp_path):
    # 4 classes x 4 shapes, 1 each carved out for validation: 12 training clouds = 1 batch
    data = tmp_path / "d"
    write_modelnet_hdf5(data, per_file=(10, 6), test_per_file=(6,), points=64)
    argv = ["--data-root", str(data), "--model", "pct_cls_tiny", "--batch-size", "12",
            "--num-points", "64", "--epochs", "1", "--dropout", "0", "--point-dropout", "0",
            "--no-progress", "--seed", "5", "--device", "cpu"]
    one, two = tmp_path / "one", tmp_path / "two"
    _run([*argv, "--output-dir", str(one)], 1, tmp_path)
    proc = _run([*argv, "--output-dir", str(two)], 2, tmp_path)
    assert proc.stdout.count("overall accuracy") == 1  # only rank 0 prints and writes

    a = load_checkpoint(one / "checkpoints/last.pt")
    b = load_checkpoint(two / "checkpoints/last.pt")
    assert a["global_step"] == b["global_step"] == 1  # exactly one optimizer step
    for key, value in a["model"].items():
        assert not key.startswith("module."), key
        if value.is_floating_point():
            assert torch.allclose(value, b["model"][key], rtol=1e-4, atol=1e-5), key
    assert any("running_mean" in k for k in a["model"]), "the model has BatchNorm layers"
    config = json.loads((two / "config.json").read_text())
    assert config["world_size"] == 2
    ta = json.loads((one / "test_metrics.json").read_text())
    tb = json.loads((two / "test_metrics.json").read_text())
    assert ta["num_samples"] == tb["num_samples"] == 6  # sharded, each cloud counted once
    assert ta["overall_accuracy"] == pytest.approx(tb["overall_accuracy"])


def test_distributed_batchnorm_is_plain_batchnorm_in_one_process():
    bn = torch.nn.BatchNorm1d(4)
    dbn = DistributedBatchNorm(4)
    dbn.load_state_dict(bn.state_dict())
    x = torch.randn(10, 4)
    assert torch.allclose(bn(x), dbn(x))
    assert torch.allclose(bn.running_var, dbn.running_var)
    assert set(dbn.state_dict()) == set(bn.state_dict())  # checkpoints stay interchangeable
