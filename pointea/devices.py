"""Choosing the torch device a command runs on (``--device``)."""

from __future__ import annotations

import torch

from .errors import InputError

__all__ = ["resolve_device"]


def resolve_device(device: str, local_rank: int = 0, world_size: int = 1) -> torch.device:
    """Turn ``--device`` into a torch device.

    ``"auto"`` picks CUDA when present (``cuda:<local_rank>`` under torchrun), else CPU.
    """
    name = device.strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"--device {device!r} is not a torch device ({exc})") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {device!r}: CUDA is not available")
        if dev.index is None:
            dev = torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
        elif world_size > 1:
            raise InputError(
                f"--device {device!r}: under torchrun each process takes cuda:<local rank>; "
                "pass --device cuda (or auto) and select GPUs with CUDA_VISIBLE_DEVICES"
            )
    return dev
