"""Spill files never outlive the process that made them, however it ends."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="POSIX signals and /proc"
)

ROOT = Path(__file__).resolve().parents[2]

# streams a cloud with spill=True and no cache, so every head term goes to disk; once the
# first file has been rewound for reading it reports the open spill files and waits
_CHILD = textwrap.dedent(
    """
    import os, sys, time
    import torch
    from pointea.models import create_model
    from pointea.models.spill import SpillFile
    from pointea.models.streaming import segment_large

    rewind = SpillFile.rewind

    def report_and_wait(self):
        rewind(self)
        fds = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
               if os.path.islink(f"/proc/self/fd/{fd}")]
        spilled = [t for t in fds if "pointea-spill-" in t]
        print("SPILLED", len(spilled), os.fstat(self._file.fileno()).st_size, flush=True)
        time.sleep(120)

    SpillFile.rewind = report_and_wait
    torch.manual_seed(0)
    model = create_model("pct_seg_tiny", num_parts=4, num_categories=2).eval()
    pos = torch.rand(3000, 3) * 2 - 1
    segment_large(model, pos, 0, chunk_size=512, cache_bytes=0, spill=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_no_spill_file_remains_after_a_kill(tmp_path, sig):
    spill_dir = tmp_path / "tmp"
    spill_dir.mkdir()
    env = {**os.environ, "TMPDIR": str(spill_dir), "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline()
        assert line.startswith("SPILLED"), (line, child.stderr.read())
        _, count, size = line.split()
        assert int(count) >= 1 and int(size) > 0  # it really spilled, to open files
        child.send_signal(sig)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -sig
    assert sorted(p.name for p in spill_dir.iterdir()) == []
