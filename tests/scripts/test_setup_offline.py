"""scripts/setup.sh with no package index, given a python that is itself a virtual
environment holding torch (the layout of a GPU image's /opt/.../.venv)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pointea_testing import REPO_ROOT as ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _copy_checkout(target: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / os.fsdecode(name)
        if source.is_file():
            (target / source.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / source.relative_to(ROOT))


def test_offline_setup_reuses_the_given_venvs_torch(tmp_path):
    if sys.prefix == sys.base_prefix:
        pytest.skip("needs the tests to run in a virtual environment (scripts/test.sh does)")
    checkout = tmp_path / "checkout"
    _copy_checkout(checkout)
    env = {**os.environ, "PIP_NO_INDEX": "1", "PYTHON": sys.executable}
    env.pop("PYTHONPATH", None)
    run = lambda: subprocess.run(  # noqa: E731
        ["bash", "scripts/setup.sh"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    first = run()
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    probe = subprocess.run(
        [
            str(checkout / ".venv" / "bin" / "python"),
            "-c",
            "import torch, pointea; print(torch.__file__); print(pointea.__file__)",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    torch_file, pointea_file = probe.stdout.split()
    import torch

    assert torch_file == torch.__file__  # the given venv's torch, not a new one
    assert Path(pointea_file).resolve().is_relative_to(checkout.resolve())
    second = run()
    assert second.returncode == 0 and "up to date" in second.stdout, second.stdout[-2000:]
