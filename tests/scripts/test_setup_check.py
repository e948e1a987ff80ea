"""The set-up check that catches a CPU-only torch-cluster next to a CUDA torch."""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pointea_testing import REPO_ROOT as ROOT

SCRIPT = ROOT / "scripts" / "setup_check.py"


def _load_script():
    """``scripts/setup_check.py`` as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("setup_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


setup_check = _load_script()
diagnose, find_nvcc = setup_check.diagnose, setup_check.find_nvcc
probe, pyg_wheel_index = setup_check.probe, setup_check.pyg_wheel_index


@pytest.mark.parametrize(
    "torch_cuda, cluster_cuda, nvcc, action",
    [
        (None, -1, None, "ok"),  # CPU torch, CPU torch-cluster
        (None, None, None, "missing"),
        ("12.4", 12040, None, "ok"),  # CUDA torch, CUDA torch-cluster
        ("12.4", -1, "/usr/local/cuda/bin/nvcc", "rebuild"),  # the silent CPU-only build
        ("12.4", -1, None, "fallback"),
        ("12.4", None, "/usr/bin/nvcc", "missing"),
    ],
)
def test_diagnose(torch_cuda, cluster_cuda, nvcc, action):
    verdict = diagnose(torch_cuda, cluster_cuda, nvcc)
    assert verdict.action == action
    assert str(verdict).startswith(action + " ")
    if action == "rebuild":
        assert "FORCE_CUDA=1" in verdict.message and "--no-cache-dir" in verdict.message
    if action == "fallback":
        assert "pure-torch" in verdict.message


def _fake_nvcc(folder: Path) -> Path:
    folder.mkdir(parents=True)
    nvcc = folder / "nvcc"
    nvcc.write_text("#!/bin/sh\n")
    nvcc.chmod(nvcc.stat().st_mode | stat.S_IXUSR)
    return nvcc


def test_find_nvcc_on_path_and_under_cuda_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    if not os.access("/usr/local/cuda/bin/nvcc", os.X_OK):
        assert find_nvcc() is None
    home = _fake_nvcc(tmp_path / "cuda" / "bin")
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "cuda"))
    assert find_nvcc() == str(home)
    on_path = _fake_nvcc(tmp_path / "bin")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert find_nvcc() == str(on_path)


def test_probe_sees_a_cpu_only_torch_cluster_as_wrong_for_a_cuda_torch(monkeypatch, tmp_path):
    """A torch-cluster without CUDA kernels (skipped where it has them): with torch claiming
    CUDA, the probe must ask for a rebuild (nvcc present) or announce the fallback (no nvcc)."""
    import torch_cluster  # noqa: F401

    if int(torch.ops.torch_cluster.cuda_version()) != -1:
        pytest.skip("this torch-cluster has CUDA kernels")
    monkeypatch.setattr(torch.version, "cuda", None)
    assert probe().action == "ok"
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(setup_check, "find_nvcc", lambda: None)
    assert probe().action == "fallback"
    monkeypatch.setattr(setup_check, "find_nvcc", lambda: "/opt/cuda/bin/nvcc")
    assert probe().action == "rebuild"


def test_pyg_wheel_index():
    assert pyg_wheel_index("2.5.1+cu124", "12.4") == (
        "https://data.pyg.org/whl/torch-2.5.0+cu124.html"
    )
    assert pyg_wheel_index("2.13.0", None) == "https://data.pyg.org/whl/torch-2.13.0+cpu.html"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ""}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_runs_by_path_from_a_checkout(tmp_path):
    """setup.sh runs ``python scripts/setup_check.py`` before pointea is installed."""
    out = _run([str(SCRIPT)], tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] in {"ok", "missing", "rebuild", "fallback"}
    index = _run([str(SCRIPT), "--wheel-index"], tmp_path)
    assert index.returncode == 0, index.stderr
    assert index.stdout.startswith("https://data.pyg.org/whl/torch-")
    usage = _run([str(SCRIPT), "--bogus"], tmp_path)
    assert usage.returncode == 2 and "python scripts/setup_check.py" in usage.stderr


@pytest.mark.slow
def test_imports_nothing_of_pointea(tmp_path):
    """Run as a script with every ``pointea`` import refused: the verdict still comes."""
    code = (
        "import runpy, sys\n"
        "class Refuse:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'pointea' or name.startswith('pointea.'):\n"
        "            raise ImportError('pointea imported by setup_check')\n"
        "sys.meta_path.insert(0, Refuse())\n"
        f"sys.argv = [{str(SCRIPT)!r}]\n"
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
    )
    out = _run(["-c", code], tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] in {"ok", "missing", "rebuild", "fallback"}
