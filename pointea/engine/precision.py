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


def _tf32_switches() -> list[tuple[object, str, object, object]]:
    """(object, attribute, value when on, value when off) of each process-wide TF32
    switch: ``fp32_precision`` where torch has it (the older ``allow_tf32`` flags are
    deprecated there), else ``allow_tf32``."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, "fp32_precision") and hasattr(
        getattr(cudnn, "conv", None), "fp32_precision"
    ):
        return [
            (matmul, "fp32_precision", "tf32", "ieee"),
            (cudnn.conv, "fp32_precision", "tf32", "ieee"),
        ]
    return [(matmul, "allow_tf32", True, False), (cudnn, "allow_tf32", True, False)]


@contextlib.contextmanager
def tf32(enabled: bool, device: torch.device) -> Iterator[None]:
    """Allow (or forbid) TF32 matrix products and cuDNN convolutions while a CUDA run
    lasts, putting the process-wide switches back after. On other devices: no change."""
    if device.type != "cuda":
        yield
        return
    switches = _tf32_switches()
    saved = [getattr(owner, name) for owner, name, _, _ in switches]
    for owner, name, on, off in switches:
        setattr(owner, name, on if enabled else off)
    try:
        yield
    finally:
        for (owner, name, _, _), value in zip(switches, saved, strict=True):
            setattr(owner, name, value)
