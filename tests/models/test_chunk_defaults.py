"""Default chunk sizes of the streamed pass: fixed on a CPU, from free memory on CUDA."""

from __future__ import annotations

import pytest
import torch

from pointea.inference import Predictor
from pointea.models import chunks, create_model
from pointea.models.chunks import CPU_CHUNK, CUDA_CHUNK_RANGE, device_chunk_size


def test_cpu_chunk_is_fixed():
    assert device_chunk_size("cpu") == CPU_CHUNK == 65_536


@pytest.mark.parametrize(
    ("free_gib", "want"),
    [(139.0, 2**20), (40.0, 2**19), (8.0, 2**18), (0.5, 2**18)],
)
def test_cuda_chunk_follows_free_memory_within_bounds(monkeypatch, free_gib, want):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (int(free_gib * 2**30), 0))
    got = device_chunk_size("cuda")
    assert got == want
    low, high = CUDA_CHUNK_RANGE
    assert low <= got <= high and got & (got - 1) == 0  # a power of two in range
    # its temporaries take at most a quarter of the free memory, unless at the floor
    assert got == low or got * chunks._BYTES_PER_CHUNK_POINT <= free_gib * 2**30 / 4


def test_predictor_takes_the_device_default_and_an_explicit_size():
    model = create_model("pct_seg_tiny")
    assert Predictor(model, num_points=64, device="cpu").chunk_size == CPU_CHUNK
    assert Predictor(model, num_points=64, device="cpu", chunk_size=4096).chunk_size == 4096
