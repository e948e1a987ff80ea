"""A cache is never served for a small source file edited in place to the same size with
its modification time set back: files of at most ``HASH_BELOW`` bytes are keyed by
their content (larger ones by size and time only, the documented limit)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pointea.datasets import s3dis
from pointea.datasets._base import HASH_BELOW
from pointea.datasets.s3dis import load_room


def _same_size_edit(path: Path, old: bytes, new: bytes) -> None:
    st = path.stat()
    data = path.read_bytes()
    assert data.count(old) == 1 and len(old) == len(new)
    path.write_bytes(data.replace(old, new))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def _room(tmp_path: Path, wall: str) -> Path:
    ann = tmp_path / "Stanford3dDataset_v1.2_Aligned_Version" / "Area_1" / "office_1"
    (ann / "Annotations").mkdir(parents=True)
    (ann / "Annotations" / "wall_1.txt").write_text(wall)
    (ann / "Annotations" / "chair_1.txt").write_text("1.0 2.0 0.5 9 8 7\n")
    return ann


@pytest.mark.filterwarnings("ignore")
def test_a_same_size_same_time_edit_of_a_small_room_file_rebuilds_its_cache(tmp_path, monkeypatch):
    room = _room(tmp_path, "0.000 0.000 1.000 100 110 120\n")
    cache = tmp_path / "processed"
    first = load_room(room, cache)
    assert sorted(first["rgb"][:, 0].tolist()) == [9, 100]
    wall = room / "Annotations" / "wall_1.txt"
    assert wall.stat().st_size <= HASH_BELOW
    _same_size_edit(wall, b"100 110", b"200 210")
    again = load_room(room, cache)
    assert sorted(again["rgb"][:, 0].tolist()) == [9, 200]
    np.testing.assert_array_equal(again["xyz"], first["xyz"])

    def no_parse(room_dir):
        raise AssertionError(f"{room_dir} parsed again: the cache was not used")

    monkeypatch.setattr(s3dis, "read_room", no_parse)  # unchanged: served from the cache
    assert sorted(load_room(room, cache)["rgb"][:, 0].tolist()) == [9, 200]
