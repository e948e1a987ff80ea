import os

import pytest
import torch

# Small, deterministic, and friendly to a 2-core machine shared with other jobs.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def make_batch(sizes, channels=None, seed=0):
    """Random packed clouds of the given sizes: (pos, batch[, x])."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(sum(sizes), 3, generator=g) * 2 - 1
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    if channels is None:
        return pos, batch
    return pos, batch, torch.randn(sum(sizes), channels, generator=g)
