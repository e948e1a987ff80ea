"""Room renders (the scenes benchmark section is tested in tests/bench/test_bench_scenes.py)."""

from __future__ import annotations

import numpy as np
import pytest

from pointea.errors import InputError
from pointea.visualization.scenes import render_room, render_room_comparison, save_room_comparison


def _room(n=400, seed=0):
    rng = np.random.default_rng(seed)
    xyz = rng.random((n, 3)) * [5.0, 4.0, 3.0]
    labels = (xyz[:, 2] < 0.1).astype(np.int64) + 2 * (xyz[:, 2] > 2.9)
    return xyz, rng.integers(0, 256, (n, 3)), labels


def test_room_views_render_with_the_numpy_backend():
    xyz, rgb, _ = _room()
    top = render_room(xyz, rgb, "top", width=64, height=48, backend="numpy")
    persp = render_room(xyz, rgb, "perspective", width=64, height=48, backend="numpy")
    assert top.shape == persp.shape == (48, 64, 3) and top.dtype == np.uint8
    assert (top != 255).any() and not np.array_equal(top, persp)
    with pytest.raises(InputError, match="view"):
        render_room(xyz, rgb, "side")


def test_comparison_grid_and_errors(tmp_path):
    xyz, rgb, labels = _room()
    pred = labels.copy()
    pred[:40] = 12
    img = render_room_comparison(xyz, rgb, labels, pred, width=64, height=48, backend="numpy")
    assert img.ndim == 3 and img.shape[1] > 4 * 64 and img.shape[0] > 2 * 48
    path = save_room_comparison(
        tmp_path / "room.png", xyz, rgb, labels, pred, width=64, height=48, backend="numpy"
    )
    assert path.stat().st_size > 0
    with pytest.raises(InputError, match="labels each"):
        render_room_comparison(xyz, rgb, labels[:5], pred)
    with pytest.raises(InputError, match="class ids"):
        render_room_comparison(xyz, rgb, labels, pred + 20)
