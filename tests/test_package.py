"""Package-level promises: imports stay light, console scripts exist, lint is clean."""

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pointea_testing import REPO_ROOT as ROOT


@pytest.mark.e2e
def test_import_does_not_load_open3d():
    code = (
        "import sys, pointea, pointea.models, pointea.datasets, pointea.engine, "
        "pointea.metrics, pointea.transforms, pointea.io, pointea.visualization\n"
        "assert 'open3d' not in sys.modules, 'open3d imported eagerly'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def declared_scripts() -> dict[str, str]:
    """pyproject.toml's ``[project.scripts]`` table (``name = "module:attr"`` rows; read
    without tomllib, which Python 3.10 lacks)."""
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split("\n[project.scripts]\n", 1)[1].split("\n[", 1)[0]
    scripts = {}
    for line in section.splitlines():
        row = line.split("#", 1)[0].strip()
        if row:
            m = re.fullmatch(r'"?([\w.-]+)"?\s*=\s*"([\w.]+:[\w.]+)"', row)
            assert m, f"unexpected row in [project.scripts]: {row}"
            scripts[m[1]] = m[2]
    return scripts


SCRIPTS = declared_scripts()


def test_every_command_line_module_has_a_console_script():
    targets = {value.split(":")[0] for value in SCRIPTS.values()}
    for path in sorted((ROOT / "pointea" / "cli").glob("*.py")):
        if "\ndef main(" in path.read_text():
            assert f"pointea.cli.{path.stem}" in targets, f"{path.name} has no console script"


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_console_scripts_are_declared_and_importable(script):
    installed = {ep.name: ep for ep in importlib.metadata.entry_points(group="console_scripts")}
    assert script in installed, f"{script} is not installed (pip install -e .)"
    assert installed[script].value == SCRIPTS[script], "installed metadata is stale"
    module, _, attr = SCRIPTS[script].partition(":")
    assert callable(getattr(importlib.import_module(module), attr))


@pytest.mark.e2e
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
