"""scripts/device_check.sh rehearsed on the CPU, in a python that resembles the GPU image.

The image has torch and torch-geometric but not torch_cluster, open3d or plotly, and no
package index: a ``sitecustomize`` on ``PYTHONPATH`` makes those three unimportable,
``PIP_NO_INDEX=1`` refuses any download, and CUDA is hidden.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from pointea_testing import REPO_ROOT as ROOT

pytestmark = pytest.mark.e2e  # every test runs the script in a subprocess

SCRIPT = ROOT / "scripts" / "device_check.sh"
STAGES = ["env", "ceilings", "correctness", "speed", "tests", "cluster"]
NEED_CUDA = ["ceilings", "speed", "cluster"]


def _blocker(folder: Path) -> Path:
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(
        "import sys\n"
        "for name in ('torch_cluster', 'open3d', 'plotly'):\n"
        "    sys.modules[name] = None\n"
    )
    return folder


def _wheel(folder: Path) -> None:
    """A one-module pure-Python wheel, as prepare_device_wheels.sh would leave there."""
    dist = "devcheck_demo-1.0.dist-info"
    with zipfile.ZipFile(folder / "devcheck_demo-1.0-py3-none-any.whl", "w") as z:
        z.writestr("devcheck_demo.py", "VALUE = 1\n")
        z.writestr(f"{dist}/METADATA", "Metadata-Version: 2.1\nName: devcheck-demo\nVersion: 1.0\n")
        z.writestr(
            f"{dist}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr(f"{dist}/RECORD", "")


def _run(tmp_path: Path, out: Path, wheels: Path, budget: int = 100) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHON": sys.executable,
        "PYTHONPATH": str(tmp_path / "block"),
        "PIP_NO_INDEX": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "OUT": str(out),
        "POINTEA_WHEELS": str(wheels),
        "POINTEA_SITE": str(tmp_path / "site"),
        "POINTEA_DEVICE_BUDGET": str(budget),
        "POINTEA_DEVICE_TESTS": "tests/test_ops.py",
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=150
    )


def _table(stdout: str) -> dict[str, list[str]]:
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in STAGES:
            rows[cells[0]] = cells
    return rows


def test_scripts_parse():
    for name in ("device_check.sh", "prepare_device_wheels.sh"):
        res = subprocess.run(["bash", "-n", str(ROOT / "scripts" / name)], capture_output=True)
        assert res.returncode == 0, res.stderr


@pytest.mark.slow
def test_rehearsal_without_cuda_or_torch_cluster(tmp_path):
    _blocker(tmp_path / "block")
    out = tmp_path / "out"
    empty = tmp_path / "wheels-empty"
    empty.mkdir()
    first = _run(tmp_path, out, empty)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]

    # the table is the last thing printed, one row per stage, within the time budget
    spent = re.search(r"pointea device check \((\d+) s of 100 s", first.stdout)
    assert spent and int(spent.group(1)) <= 100, first.stdout[-2000:]
    assert first.stdout.rstrip().splitlines()[-1].startswith("| cluster ")
    rows = _table(first.stdout)
    assert list(rows) == STAGES
    for name in NEED_CUDA:
        assert rows[name][2] == "skipped" and rows[name][3].startswith("skipped: no CUDA"), rows
    for name in ("env", "correctness", "tests"):
        assert rows[name][2] == "ok", rows[name]
    assert "sampling: torch" in rows["env"][3]  # torch_cluster really was missing
    assert "passed" in rows["tests"][3] and " failed" not in rows["tests"][3]

    files = [p for p in out.rglob("*") if p.is_file()]
    assert 1 <= len(files) <= 8, files
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    values = {(d["stage"], d["key"]): d["value"] for d in lines}
    assert values[("env", "torch_cluster")] is None
    assert not {"open3d", "plotly"} & set(values[("env", "optional_packages")])
    assert values[("correctness", "fps_share_equal_float64")] >= 0.99

    # a second run, now with a wheel in the folder: installed beside, not into, the python
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels)
    second = _run(tmp_path, out, wheels)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-2000:]
    assert "installed 1 wheel(s)" in second.stdout
    assert (tmp_path / "site" / "devcheck_demo.py").is_file()
    assert list(_table(second.stdout)) == STAGES
    assert len([p for p in out.rglob("*") if p.is_file()]) <= 8


@pytest.mark.slow
def test_a_spent_time_budget_skips_the_stages_and_still_prints_the_table(tmp_path):
    _blocker(tmp_path / "block")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    proc = _run(tmp_path, tmp_path / "out", wheels, budget=5)
    rows = _table(proc.stdout)
    assert list(rows) == STAGES, proc.stdout
    for name in ("env", "ceilings", "correctness", "speed", "tests"):
        assert rows[name][2] == "skipped" and "time budget of 5 s spent" in rows[name][3]
    assert proc.returncode == 1  # the check did not do its work
    assert proc.stdout.rstrip().endswith((tmp_path / "out" / "summary.txt").read_text().rstrip())
