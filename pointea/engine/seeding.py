"""Seeds of a run: every random stream derived from ``(seed, epoch, ...)``, never history.

* :func:`derive_seed` mixes integers into a 32-bit seed.
* :func:`seed_everything` seeds torch (CPU and CUDA), numpy and Python's ``random``.
* :func:`isolated_rng` runs a block on the CPU generators seeded by one value and puts
  the outer states back (the per-sample augmentation stream).
* :class:`EpochSeededDataset` gives sample ``i`` of epoch ``e`` its own stream.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["EpochSeededDataset", "derive_seed", "isolated_rng", "seed_everything"]


def derive_seed(*parts: int) -> int:
    """A 32-bit seed from integers, well mixed (``numpy.random.SeedSequence``)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


@contextlib.contextmanager
def isolated_rng(seed: int) -> Iterator[None]:
    """Run a block with the CPU generators (torch, numpy, ``random``) seeded by ``seed``,
    restoring their outer states after.

    Only the CPU torch generator is touched: ``torch.manual_seed`` would also reseed
    every CUDA generator (and never restore it), so dropout on a GPU would follow the
    last sample's seed.
    """
    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


class EpochSeededDataset(Dataset):
    """Wraps a dataset so that sample ``i`` of epoch ``e`` is drawn with a random stream
    seeded by ``(seed, e, i)``: the same on any number of workers or processes.

    The epoch lives in a shared-memory tensor, so workers of a loader built with
    ``persistent_workers=True`` read the value set after they started.

    Args:
        dataset: the wrapped dataset (its transform draws from the CPU generators).
        seed: the run's seed.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed
        # in shared memory: persistent data-loader workers see each new epoch
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(int(epoch))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        with isolated_rng(derive_seed(self.seed, self.epoch, index, 17)):
            return self.dataset[index]

    def __repr__(self) -> str:
        return f"EpochSeededDataset({self.dataset!r}, seed={self.seed}, epoch={self.epoch})"
