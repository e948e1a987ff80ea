"""Count the places where torch code reads tensor values back to the host.

On a GPU each such read waits for the device (a synchronisation). The counter sees the
Python-level reads (``bool(t)``, ``int(t)``, ``.item()``, ``.tolist()``, ...) and the ops
whose output size depends on values (``nonzero``, boolean-mask indexing, ``bincount``,
``repeat_interleave`` without ``output_size``), through a ``TorchFunctionMode``; reads
inside compiled kernels (torch_cluster's own) are not seen.
"""

from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode

_READS = {
    "__bool__",
    "__int__",
    "__float__",
    "__index__",
    "item",
    "tolist",
    "equal",
    "nonzero",
    "unique",
    "unique_consecutive",
    "masked_select",
    "bincount",
}


class HostReads(TorchFunctionMode):
    """``with HostReads() as reads: ...``; then ``reads.names`` lists what was read."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in _READS:
            self.names.append(name)
        elif name == "repeat_interleave" and "output_size" not in kwargs:
            repeats = args[1] if len(args) > 1 else kwargs.get("repeats")
            if isinstance(repeats, torch.Tensor) and repeats.numel() > 1:
                self.names.append(name)
        elif name == "__getitem__" and _has_bool_mask(args[1] if len(args) > 1 else None):
            self.names.append("mask_index")
        return func(*args, **kwargs)


def _has_bool_mask(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)
