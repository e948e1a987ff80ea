"""How many points a streamed pass (:mod:`pointea.models.streaming`) takes at a time:
the defaults per device and the smallest chunk a user may ask for."""

from __future__ import annotations

import torch

from ..errors import InputError

__all__ = [
    "CPU_CHUNK",
    "CUDA_CHUNK_RANGE",
    "DEFAULT_CHUNK",
    "MIN_CHUNK",
    "check_chunk_size",
    "device_chunk_size",
]

#: points per chunk by default (see docs/PERFORMANCE.md, "A million points")
DEFAULT_CHUNK = 16_384

#: the smallest chunk a user-facing entry accepts: below it the per-chunk overhead
#: (kernel launches, Python) dominates and a small room takes minutes, while the
#: memory of a 64-point chunk is already negligible
MIN_CHUNK = 64


#: points per chunk of the predictor's streamed pass on a CPU
CPU_CHUNK = 65_536

#: bound of a CUDA chunk: large enough to fill the device, small enough to keep the
#: per-chunk temporaries (~12 KiB a point at the published widths) a fraction of memory
CUDA_CHUNK_RANGE = (2**18, 2**20)

#: bytes of per-chunk temporaries a point may take (float32, published widths, with margin)
_BYTES_PER_CHUNK_POINT = 12 * 1024


def device_chunk_size(device: torch.device | str) -> int:
    """The default chunk of a streamed pass on ``device``: :data:`CPU_CHUNK` points on a
    CPU; on CUDA the power of two whose temporaries take at most a quarter of the free
    device memory, within :data:`CUDA_CHUNK_RANGE`."""
    device = torch.device(device)
    if device.type != "cuda":
        return CPU_CHUNK
    free, _ = torch.cuda.mem_get_info(device)
    fit = max(int(free) // 4 // _BYTES_PER_CHUNK_POINT, 1)
    low, high = CUDA_CHUNK_RANGE
    return min(max(1 << (fit.bit_length() - 1), low), high)


def check_chunk_size(value: int, name: str = "chunk_size") -> int:
    """``value`` as an int, or :class:`InputError` naming ``name`` (a setting or a flag)
    when it is below :data:`MIN_CHUNK`."""
    if isinstance(value, bool) or int(value) != value or value < MIN_CHUNK:
        raise InputError(
            f"{name}: must be an integer of at least {MIN_CHUNK} points (smaller chunks "
            f"only add per-chunk overhead), got {value!r}"
        )
    return int(value)
