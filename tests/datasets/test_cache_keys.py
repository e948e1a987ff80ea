"""The one cache-key helper of the dataset readers and the synthetic sets' markers."""

from __future__ import annotations

import json
import os

import pytest

from pointea.datasets._base import HASH_BELOW, fingerprint, source_stats
from pointea.datasets.synthetic.rooms import write_rooms


def _same_size_edit(path, old: bytes, new: bytes) -> None:
    st = path.stat()
    path.write_bytes(path.read_bytes().replace(old, new))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def test_small_files_are_keyed_by_content_large_ones_by_size_and_time(tmp_path):
    small, large = tmp_path / "list.txt", tmp_path / "points.txt"
    small.write_bytes(b"a 1\nb 2\n")
    large.write_bytes(b"x" * (HASH_BELOW + 1))
    key = fingerprint(source_stats([small, large], tmp_path))
    _same_size_edit(small, b"1", b"3")
    key2 = fingerprint(source_stats([small, large], tmp_path))
    assert key2 != key
    _same_size_edit(large, b"xx", b"yy")  # documented limit: not seen
    assert fingerprint(source_stats([small, large], tmp_path)) == key2
    assert source_stats([small], tmp_path)[0][0] == "list.txt"


def test_fingerprint_is_canonical():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2}) and len(fingerprint(1)) == 16


def test_room_sets_are_reused_by_fingerprint_and_older_markers_still_match(tmp_path):
    folder = write_rooms(tmp_path, rooms_per_area=1, areas=(1,), density=10)
    marker = folder / ".pointea_synthetic_rooms.json"
    record = json.loads(marker.read_text())
    assert record["fingerprint"] == fingerprint(record["params"])
    assert write_rooms(tmp_path, rooms_per_area=1, areas=(1,), density=10) == folder
    marker.write_text(json.dumps(record["params"]))  # a marker holding only the arguments
    assert write_rooms(tmp_path, rooms_per_area=1, areas=(1,), density=10) == folder
    marker.write_text("{broken")
    with pytest.raises(ValueError, match="overwrite"):
        write_rooms(tmp_path, rooms_per_area=1, areas=(1,), density=10)
