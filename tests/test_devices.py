"""``--device`` to a torch device, shared by training, evaluation and prediction."""

import pytest
import torch

from pointea.devices import resolve_device
from pointea.errors import InputError


def test_names_and_auto():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_refusals_name_the_flag(monkeypatch):
    with pytest.raises(InputError, match="--device 'gpu0' is not a torch device"):
        resolve_device("gpu0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match="CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")


def test_cuda_under_torchrun_takes_the_local_rank(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert resolve_device("cuda", local_rank=5, world_size=8) == torch.device("cuda", 1)
    with pytest.raises(InputError, match="cuda:<local rank>"):
        resolve_device("cuda:2", local_rank=0, world_size=2)


def test_the_engine_uses_the_same_function():
    from pointea.engine import distributed

    assert distributed.resolve_device is resolve_device
