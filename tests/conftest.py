from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch
from pointea_testing import (
    write_modelnet_hdf5,
    write_modelnet_resampled,
    write_semseg_checkpoint,
    write_shapenet_hdf5,
    write_shapenet_text,
)

from pointea.datasets import ensure_synthetic

# Small, deterministic, and friendly to a 2-core machine shared with other jobs.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
os.environ.setdefault("MPLBACKEND", "Agg")

# The device the device-aware tests run on: `POINTEA_TEST_DEVICE=cuda pytest ...` on a GPU
# machine (scripts/device_check.sh). Tests that compare two runs bit for bit stay on CPU.
TEST_DEVICE = os.environ.get("POINTEA_TEST_DEVICE", "cpu")


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every ``slow`` test is also ``e2e``, so ``-m "not e2e"`` is the unit tier."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def device() -> torch.device:
    """The device named by ``POINTEA_TEST_DEVICE`` (default ``cpu``); fails if absent."""
    dev = torch.device(TEST_DEVICE)
    if dev.type == "cuda" and not torch.cuda.is_available():
        pytest.fail(f"POINTEA_TEST_DEVICE={TEST_DEVICE} but torch sees no CUDA device")
    torch.empty(0, device=dev)  # an unknown or absent device fails here, clearly
    return dev


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="module")
def cls_root(tmp_path_factory):
    """3 classes x 6 training and 2 test clouds of 128 points (seconds to train on)."""
    root = tmp_path_factory.mktemp("cls_data")
    return ensure_synthetic(
        "modelnet40", root=root, num_classes=3, train_per_class=6, test_per_class=2, points=128
    )


@pytest.fixture
def modelnet_hdf5_root(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    return tmp_path, write_modelnet_hdf5(tmp_path)


@pytest.fixture
def modelnet_resampled_root(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    return tmp_path, write_modelnet_resampled(tmp_path)


@pytest.fixture
def shapenet_text_root(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    return tmp_path, write_shapenet_text(tmp_path)


@pytest.fixture
def shapenet_hdf5_root(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    return tmp_path, write_shapenet_hdf5(tmp_path)


@pytest.fixture(scope="session")
def semseg_checkpoint(tmp_path_factory) -> Path:
    """A tiny scene segmenter (``pct_semseg_tiny``, external attention) as a training
    checkpoint whose predictions vary from point to point (see
    :func:`pointea_testing.write_semseg_checkpoint`)."""
    return write_semseg_checkpoint(tmp_path_factory.mktemp("semseg") / "best.pt")
