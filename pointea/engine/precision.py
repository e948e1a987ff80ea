"""Numeric precision of a run: mixed-precision autocast and TF32 on CUDA."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from .config import TrainConfig

__all__ = ["autocast", "tf32"]


def autocast(cfg: TrainConfig, device: torch.device):
    """The mixed-precision context of ``cfg`` (float16 ``amp``, ``bf16``, or none)."""
    if cfg.amp:
        return torch.autocast(device_type=device.type, dtype=torch.float16)
    if cfg.bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def tf32(enabled: bool, device: torch.device) -> Iterator[None]:
    """Allow (or forbid) TF32 matrix products and cuDNN convolutions while a CUDA run
    lasts, putting the process-wide flags back after. On other devices: no change."""
    if device.type != "cuda":
        yield
        return
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = bool(enabled)
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn
