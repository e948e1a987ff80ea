"""scripts/pch_cc.sh, the compiler wrapper of torch-cluster's source build, driven with a
fake compiler that records its arguments (the real build takes minutes; the fresh-clone
set-up exercises it for real)."""

import os
import shlex
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # every test runs the wrapper script in a subprocess

WRAPPER = Path(__file__).resolve().parents[2] / "scripts" / "pch_cc.sh"

FAKE = """#!/usr/bin/env bash
printf '%s\\n' "$*" >> "{log}"
out=""; prev=""
for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
case " $* " in *" c++-header "*) [ -n "{fail_header}" ] && exit 1 ;; esac
[ -n "$out" ] && : > "$out"
exit 0
"""


def _fake(tmp_path: Path, fail_header: bool = False) -> tuple[Path, Path]:
    log = tmp_path / "calls.log"
    cc = tmp_path / "fake-g++"
    cc.write_text(FAKE.format(log=log, fail_header="1" if fail_header else ""))
    cc.chmod(0o755)
    return cc, log


def _run(cc: Path, pch: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "POINTEA_PCH_DIR": str(pch)}
    return subprocess.run(
        ["bash", str(WRAPPER), str(cc), *args], env=env, capture_output=True, text=True
    )


def _compile(cc: Path, pch: Path, name: str) -> subprocess.CompletedProcess:
    flags = ["-DNDEBUG", "-O2", "-fPIC", f"-DTORCH_EXTENSION_NAME=_{name}_cpu", "-std=c++17"]
    return _run(cc, pch, *flags, "-c", f"csrc/{name}.cpp", "-o", f"{pch}/{name}.o")


@pytest.fixture
def pch(tmp_path):
    d = tmp_path / "pch"
    d.mkdir()
    return d


def test_the_header_is_built_once_without_the_module_name_and_included_everywhere(tmp_path, pch):
    cc, log = _fake(tmp_path)
    for name in ("fps", "knn", "radius"):
        assert _compile(cc, pch, name).returncode == 0
    calls = [shlex.split(line) for line in log.read_text().splitlines()]
    headers = [c for c in calls if "c++-header" in c]
    assert len(headers) == 1
    header = headers[0]
    assert not any(a.startswith("-DTORCH_EXTENSION_NAME") for a in header)
    assert {"-DNDEBUG", "-O2", "-fPIC", "-std=c++17"} <= set(header)  # the compile's flags
    assert "-c" not in header and not any(a.endswith(".cpp") for a in header)
    assert (pch / "torch_all.h.gch").exists()
    assert "#include <torch/torch.h>" in (pch / "torch_all.h").read_text()
    compiles = [c for c in calls if "c++-header" not in c]
    assert len(compiles) == 3
    for c, name in zip(compiles, ("fps", "knn", "radius"), strict=True):
        assert c[:2] == ["-include", str(pch / "torch_all.h")]
        assert f"-DTORCH_EXTENSION_NAME=_{name}_cpu" in c and f"csrc/{name}.cpp" in c


def test_links_and_version_probes_pass_through_unchanged(tmp_path, pch):
    cc, log = _fake(tmp_path)
    link = ["-shared", "a.o", "b.o", "-o", str(tmp_path / "m.so")]
    assert _run(cc, pch, *link).returncode == 0
    assert shlex.split(log.read_text().splitlines()[-1]) == link
    assert not (pch / "torch_all.h").exists()


def test_a_failing_header_falls_back_to_plain_compiles(tmp_path, pch):
    cc, log = _fake(tmp_path, fail_header=True)
    first, second = _compile(cc, pch, "fps"), _compile(cc, pch, "knn")
    assert first.returncode == 0 and second.returncode == 0
    assert "compiling without it" in first.stderr
    calls = [shlex.split(line) for line in log.read_text().splitlines()]
    assert sum("c++-header" in c for c in calls) == 1  # not retried for every file
    plain = [c for c in calls if "c++-header" not in c]
    assert len(plain) == 2 and all("-include" not in c for c in plain)


def test_without_a_folder_it_refuses_with_the_variable_named(tmp_path):
    cc, _ = _fake(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "POINTEA_PCH_DIR"}
    proc = subprocess.run(
        ["bash", str(WRAPPER), str(cc), "-c", "a.cpp", "-o", "a.o"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "POINTEA_PCH_DIR" in proc.stderr


def test_called_as_plain_cxx_it_runs_the_named_default_compiler(tmp_path, pch):
    """torch checks the compiler with ``$CXX -v``: the first argument is then a flag."""
    cc, log = _fake(tmp_path)
    env = {**os.environ, "POINTEA_PCH_DIR": str(pch), "POINTEA_PCH_CXX": str(cc)}
    proc = subprocess.run(["bash", str(WRAPPER), "-v"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0
    assert log.read_text().splitlines() == ["-v"]
