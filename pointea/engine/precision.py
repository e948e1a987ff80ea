"""Numeric precision of a run: mixed-precision autocast, TF32 on CUDA and deterministic
algorithms."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from .config import TrainConfig

__all__ = ["autocast", "deterministic", "tf32"]


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


#: cuBLAS's workspace setting that deterministic algorithms require on CUDA
CUBLAS_WORKSPACE = ":4096:8"


@contextlib.contextmanager
def deterministic(enabled: bool) -> Iterator[None]:
    """While a run lasts, only deterministic algorithms (an op without one raises), cuDNN
    without autotuning, and ``CUBLAS_WORKSPACE_CONFIG`` set as cuBLAS needs it (unless the
    user set it; it takes effect if no CUDA matrix product ran before in the process).
    Everything is put back after. ``enabled=False``: no change."""
    if not enabled:
        yield
        return
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    )
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.benchmark = saved[2]
        if saved[3] is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
