"""Package-level promises: imports stay light, console scripts exist, lint is clean."""

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
from pointea_testing import REPO_ROOT as ROOT


def test_import_does_not_load_open3d():
    code = (
        "import sys, pointea, pointea.models, pointea.datasets, pointea.engine, "
        "pointea.metrics, pointea.transforms, pointea.io, pointea.viz\n"
        "assert 'open3d' not in sys.modules, 'open3d imported eagerly'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "script",
    [
        "pointea-train",
        "pointea-seg",
        "pointea-eval",
        "pointea-predict",
        "pointea-convert",
        "pointea-data",
        "pointea-bench",
    ],
)
def test_console_scripts_are_declared_and_importable(script):
    entry = {ep.name: ep for ep in importlib.metadata.entry_points(group="console_scripts")}
    assert script in entry, f"{script} is not installed (pip install -e .)"
    assert callable(entry[script].load())


def test_ruff_is_clean():
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.exists():
        pytest.fail("ruff is not installed in the environment (scripts/setup.sh installs it)")
    proc = subprocess.run(
        [str(ruff), "check", "pointea", "tests", "scripts"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
