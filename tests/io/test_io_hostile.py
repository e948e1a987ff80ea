"""Hostile inputs to the readers: each gets one clear DataError, fast.

FIFOs and devices must be refused without reading (a FIFO blocks forever, /dev/zero never
ends), HDF5 headers declaring more data than the file holds must be refused before any
allocation, binary STL headers starting with "solid" must be read as binary, and a file
name that is not UTF-8 must not break the message.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest

from pointea import io
from pointea.errors import DataError


def within(seconds: float, fn, *args):
    """Run ``fn(*args)`` in a daemon thread; fail if it has not returned in time."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"{fn.__name__} still running after {seconds} s (hangs)"
    if "error" in box:
        raise box["error"]
    return box.get("value")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
@pytest.mark.parametrize("reader", ["read_point_cloud", "load_points"])
def test_fifo_is_refused_not_waited_on(tmp_path, reader):
    fifo = tmp_path / "x.xyz"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match=r"x\.xyz: is a named pipe \(FIFO\), not a regular file"):
        within(10, getattr(io, reader), fifo)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
@pytest.mark.parametrize("name", ["z.xyz", "z.ply", "z.stl", "z.obj"])
def test_symlink_to_device_is_refused(tmp_path, name):
    link = tmp_path / name
    link.symlink_to("/dev/zero")
    with pytest.raises(DataError, match="character device, not a regular file"):
        within(10, io.load_points, link)


def test_dataset_text_files_refuse_devices_too(tmp_path):
    from pointea.io.files import read_text

    link = tmp_path / "shape_names.txt"
    link.symlink_to("/dev/zero")
    with pytest.raises(DataError, match="character device"):
        within(10, read_text, link, "class names")


def _giant_h5(path: Path, **kw) -> Path:
    with h5py.File(path, "w") as f:
        f.create_dataset("data", shape=(2, 2_000_000_000, 3), dtype="f4", **kw)
        f.create_dataset("label", data=np.zeros((2, 1), np.int64))
    return path


@pytest.mark.parametrize("layout", ["contiguous", "gzip"])
def test_h5_declaring_billions_of_points_is_refused_before_reading(tmp_path, layout):
    kw = {"chunks": (1, 1024, 3), "compression": "gzip"} if layout == "gzip" else {}
    path = _giant_h5(tmp_path / "big.h5", **kw)
    assert path.stat().st_size < 100_000
    with pytest.raises(DataError, match=r"big\.h5: HDF5 key 'data' declares shape \(2, 2000000000"):
        io.read_h5_entry(path, 0)
    with pytest.raises(DataError, match="more than a"):
        io.load_points(f"{path}:1")
    # the dataset readers go through the same helper
    from pointea.io.hdf5 import h5_array, open_h5

    with pytest.raises(DataError, match="declares shape"), open_h5(path) as f:
        h5_array(f, path, "data", ndim=3, tail=(None, 3))
    errors = list(io.expand_inputs([path]))
    assert len(errors) == 1 and isinstance(errors[0], DataError)


def test_h5_memory_error_becomes_data_error(tmp_path, monkeypatch):
    path = tmp_path / "ok.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=np.zeros((2, 16, 3), np.float32))

    def no_memory(self, *args):
        raise MemoryError

    monkeypatch.setattr(h5py.Dataset, "__getitem__", no_memory)
    with pytest.raises(DataError, match=r"ok\.h5: .*too large to read into memory"):
        io.read_h5_entry(path, 0)


def _binary_stl(n: int, header: bytes = b"solid made by a CAD tool") -> bytes:
    dt = np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
    rec = np.zeros(n, dt)
    rec["v"] = np.random.default_rng(0).random((n, 3, 3))
    return header.ljust(80, b" ") + np.uint32(n).tobytes() + rec.tobytes()


def test_truncated_binary_stl_with_solid_header_says_truncated(tmp_path):
    path = tmp_path / "cut.stl"
    path.write_bytes(_binary_stl(10)[:-30])
    with pytest.raises(DataError, match=r"cut\.stl: truncated: binary STL header declares 10") as e:
        io.read_mesh(path)
    assert "not a text file" not in str(e.value)


def test_binary_stl_with_solid_header_and_trailing_bytes_is_read(tmp_path):
    path = tmp_path / "pad.stl"
    path.write_bytes(_binary_stl(10) + b"\0\0")
    assert io.read_mesh(path).faces.shape == (10, 3)


@pytest.mark.skipif(os.name == "nt", reason="file names are UTF-16 on Windows")
@pytest.mark.parametrize("content", [b"", b"1 2\n", b"not numbers\n"])
def test_non_utf8_file_name_gives_printable_message(tmp_path, content):
    raw = os.fsencode(tmp_path) + b"/caf\xe9.xyz"
    try:
        with open(raw, "wb") as f:
            f.write(content)
    except OSError:
        pytest.skip("the file system refuses non-UTF-8 names")
    with pytest.raises(DataError) as e:
        io.read_point_cloud(os.fsdecode(raw))
    message = str(e.value)
    message.encode("utf-8")  # a strict UTF-8 stdout can print it
    assert "caf\\xe9.xyz" in message
