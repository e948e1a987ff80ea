import os

import pytest
import torch

# Small, deterministic, and friendly to a 2-core machine shared with other jobs.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
os.environ.setdefault("MPLBACKEND", "Agg")

# The device the device-aware tests run on: `POINTEA_TEST_DEVICE=cuda pytest ...` on a GPU
# machine (scripts/device_check.sh). Tests that compare two runs bit for bit stay on CPU.
TEST_DEVICE = os.environ.get("POINTEA_TEST_DEVICE", "cpu")


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


def make_batch(sizes, channels=None, seed=0, device="cpu"):
    """Random packed clouds of the given sizes: (pos, batch[, x])."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(sum(sizes), 3, generator=g) * 2 - 1
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    if channels is None:
        return pos.to(device), batch.to(device)
    return (
        pos.to(device),
        batch.to(device),
        torch.randn(sum(sizes), channels, generator=g).to(device),
    )
