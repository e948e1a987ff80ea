"""scripts/device_check.sh without a GPU: one clear line and exit status 2, no crash."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pointea_testing import REPO_ROOT as ROOT

pytestmark = pytest.mark.e2e  # every test runs the script in a subprocess

SCRIPT = ROOT / "scripts" / "device_check.sh"


def _bin_dir(tmp_path: Path, gpus: int) -> Path:
    """A PATH with the basic tools, and a fake nvidia-smi listing ``gpus`` GPUs."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("bash", "date", "mkdir", "grep", "tee", "printf", "tail", "sed", "dirname"):
        found = shutil.which(tool)
        if found:
            (folder / tool).symlink_to(found)
    if gpus:
        smi = folder / "nvidia-smi"
        lines = "".join(f"echo 'GPU {i}: Fake GPU (UUID: GPU-{i})'\n" for i in range(gpus))
        smi.write_text("#!/bin/sh\n" + lines)
        smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    return folder


def _run(tmp_path: Path, gpus: int) -> subprocess.CompletedProcess:
    env = {
        "PATH": str(_bin_dir(tmp_path, gpus)),
        "OUT": str(tmp_path / "out"),
        "PYTHON": sys.executable,
        "HOME": os.environ.get("HOME", "/tmp"),
    }
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )


def test_without_nvidia_smi_it_says_so_in_one_line(tmp_path):
    proc = _run(tmp_path, gpus=0)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no NVIDIA GPU visible" in lines[0], proc.stderr
    assert proc.stdout == ""


@pytest.mark.slow
def test_a_listed_gpu_without_cuda_torch_is_refused(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    proc = _run(tmp_path, gpus=1)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA-enabled torch" in lines[0], proc.stderr
