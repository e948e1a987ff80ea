"""Reading a file needs a small, size-independent multiple of the file's size in memory.

Measured with ``tracemalloc`` (numpy's buffers are traced); the benchmark
(``python -m pointea.bench.readers``) reports the same multiple at 10^4..10^6 faces.
"""

from __future__ import annotations

import tracemalloc

import pytest

from pointea import io
from pointea.bench.readers import FORMATS, MESH_FORMATS, SUFFIX, write_format

# Text: decoded text, one Python string per line, float64 values, int64 output.
LIMIT = {"ply_binary": 8, "stl_binary": 8, "pcd_binary": 8}


@pytest.mark.parametrize("fmt", FORMATS)
def test_peak_memory_is_a_small_multiple_of_the_file(tmp_path, fmt):
    path = tmp_path / f"m{SUFFIX[fmt]}"
    write_format(path, fmt, 5000)
    read = io.read_mesh if fmt in MESH_FORMATS else io.read_point_cloud
    read(path)  # imports, caches
    tracemalloc.start()
    try:
        read(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    multiple = peak / path.stat().st_size
    assert multiple <= LIMIT.get(fmt, 32), f"{fmt}: peak {multiple:.1f}x the file size"
