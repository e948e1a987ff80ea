"""pointea.files: atomic writes, atomic folders and the advisory file lock."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from pointea.errors import PointeaError
from pointea.files import (
    FileLock,
    LockTimeout,
    atomic_folder,
    atomic_path,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    publish_folder,
    staging_folder,
)


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------- atomic writes
def test_atomic_writes_of_bytes_text_and_json(tmp_path):
    assert atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01") == tmp_path / "a.bin"
    atomic_write_text(tmp_path / "sub" / "b.txt", "héllo")
    atomic_write_json(tmp_path / "c.json", {"x": [1, 2]})
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "sub" / "b.txt").read_text(encoding="utf-8") == "héllo"
    assert json.loads((tmp_path / "c.json").read_text()) == {"x": [1, 2]}
    assert (tmp_path / "c.json").read_text().endswith("\n")
    mode = (tmp_path / "a.bin").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # not mkstemp's 0600
    assert _names(tmp_path) == ["a.bin", "c.json", "sub"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "f.json"
    atomic_write_text(target, "old")

    def half_then_fail(f):
        f.write(b"new but incomp")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old" and _names(tmp_path) == ["f.json"]


def test_write_errors_name_the_destination(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match=str(blocker / "inside.txt")):
        atomic_write_text(blocker / "inside.txt", "y")  # parent is a file


# ----------------------------------------------------------------- folders
def test_atomic_folder_publishes_only_when_complete(tmp_path):
    final = tmp_path / "set"
    with pytest.raises(RuntimeError), atomic_folder(final) as tmp:
        (tmp / "half.txt").write_text("1")
        raise RuntimeError("interrupted")
    assert _names(tmp_path) == []  # nothing that looks complete, no temporary left
    with atomic_folder(final) as tmp:
        (tmp / "a.txt").write_text("1")
    assert _names(final) == ["a.txt"] and _names(tmp_path) == ["set"]
    with pytest.raises(FileExistsError), atomic_folder(final):
        pass
    with atomic_folder(final, replace=True) as tmp:
        (tmp / "b.txt").write_text("2")
    assert _names(final) == ["b.txt"] and _names(tmp_path) == ["set"]


def test_publish_a_folder_inside_the_staging_folder(tmp_path):
    final = tmp_path / "out"
    with staging_folder(final) as tmp:
        (tmp / "inner").mkdir()
        (tmp / "inner" / "x").write_text("1")
        publish_folder(tmp / "inner", final)
    assert _names(final) == ["x"] and _names(tmp_path) == ["out"]


# ----------------------------------------------------------------- locks
def test_lock_try_once_names_the_holder(tmp_path):
    path = tmp_path / ".lock"
    with FileLock(path) as held:
        assert held.locked
        with pytest.raises(LockTimeout) as info:
            FileLock(path, timeout=0).acquire()
        assert f"pid {os.getpid()}" in str(info.value) and str(path) in str(info.value)
        assert info.value.holder.startswith("pid ") and isinstance(info.value, PointeaError)
        assert isinstance(info.value, TimeoutError)
    assert not held.locked
    FileLock(path, timeout=0).acquire().release()  # free again


def test_lock_timeout_and_wait(tmp_path):
    path = tmp_path / ".lock"
    first = FileLock(path).acquire()
    t = time.perf_counter()
    with pytest.raises(LockTimeout, match="stayed held for 0.2 s"):
        FileLock(path, timeout=0.2, poll=0.02).acquire()
    assert time.perf_counter() - t >= 0.2
    messages = []
    threading.Timer(0.2, first.release).start()
    with FileLock(path, timeout=10, poll=0.02, on_wait=messages.append) as second:
        assert second.locked
    assert len(messages) == 1 and "waiting for the lock" in messages[0]


def test_lock_is_not_reentrant_and_validates_timeout(tmp_path):
    lock = FileLock(tmp_path / ".lock").acquire()
    with pytest.raises(RuntimeError, match="already held"):
        lock.acquire()
    lock.release()
    lock.release()  # harmless
    with pytest.raises(ValueError, match="timeout"):
        FileLock(tmp_path / ".lock", timeout=-1)
    with pytest.raises(OSError):
        FileLock(tmp_path / "missing" / ".lock").acquire()


def test_atomic_path_for_writers_that_need_a_name(tmp_path):
    import torch

    out = tmp_path / "data.pt"
    with atomic_path(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".data.pt.") and not out.exists()
        torch.save({"x": torch.arange(3)}, str(tmp))
    assert torch.load(out, weights_only=True)["x"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError), atomic_path(out) as tmp:
        tmp.write_bytes(b"half")
        raise ValueError("writer failed")
    assert torch.load(out, weights_only=True)["x"].tolist() == [0, 1, 2]
    assert _names(tmp_path) == ["data.pt"]
