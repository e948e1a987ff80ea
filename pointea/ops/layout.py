"""Packed point clouds: their layout and the checks of their values.

A batch of ``B`` clouds is packed along the first axis: ``pos`` is ``(total_points, 3)``,
features ``x`` are ``(total_points, C)`` and ``batch`` (``(total_points,)``, sorted, values
``0..B-1``) says which cloud each point belongs to; ``batch=None`` means a single cloud.

Host reads: every value read back from a GPU waits for it. :func:`layout_of` reads twice,
and ``with input_checks(False):`` skips the value checks of :func:`check_cloud`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError

__all__ = [
    "CloudLayout",
    "check_cloud",
    "host_uniform",
    "input_checks",
    "input_checks_enabled",
    "layout_of",
]


@dataclass(frozen=True)
class CloudLayout:
    """How a packed batch is laid out, computed once per forward pass.

    Attributes:
        batch: ``(total_points,)`` cloud index of every point.
        num_clouds: number of clouds ``B``.
        uniform: points per cloud when every cloud has the same count, else ``None``
            (enables the dense ``(B, N, C)`` fast paths, which are tested equal to the
            packed ones).
        counts: ``(B,)`` points per cloud when already known (saves a ``bincount``,
            which synchronises with a GPU); optional.
    """

    batch: Tensor
    num_clouds: int
    uniform: int | None
    counts: Tensor | None = None

    @property
    def sizes(self) -> Tensor:
        """``(B,)`` points per cloud, on the device of ``batch``."""
        if self.counts is not None:
            return self.counts
        if self.uniform is not None:
            return torch.full(
                (self.num_clouds,), self.uniform, dtype=torch.long, device=self.batch.device
            )
        return torch.bincount(self.batch, minlength=self.num_clouds)


# Input validation reads values (NaN checks, sortedness): each check waits for the GPU.
_INPUT_CHECKS: ContextVar[bool] = ContextVar("pointea_input_checks", default=True)


def input_checks_enabled() -> bool:
    """Whether :func:`check_cloud` validates values (see :func:`input_checks`). Never
    inside ``torch.compile``: a compiled graph cannot read values back (each check would
    break it), so validate the data before a compiled step."""
    if torch.compiler.is_compiling():
        return False
    return _INPUT_CHECKS.get()


@contextmanager
def input_checks(enabled: bool) -> Iterator[None]:
    """Turn the value checks of :func:`check_cloud` on or off inside a ``with`` block.

    The checks (finite coordinates, a sorted batch vector without gaps) read tensor values,
    so on a GPU each one waits for the device. A training loop that feeds data it has
    already validated can skip them: ``with input_checks(False): loss = step(...)``.
    Shape, dtype and length checks stay on (they cost nothing).
    """
    token = _INPUT_CHECKS.set(bool(enabled))
    try:
        yield
    finally:
        _INPUT_CHECKS.reset(token)


def layout_of(
    batch: Tensor | None,
    num_points: int,
    device: torch.device,
    *,
    ptr: Tensor | None = None,
    uniform: int | None = None,
) -> CloudLayout:
    """Build a :class:`CloudLayout` from a (validated) batch vector.

    Reads two values from the device (the cloud count, then the smallest and largest
    cloud together): two synchronisations on a GPU, none for ``batch=None``. With PyG's
    ``ptr`` (``(B + 1,)`` offsets of the clouds, ``data.ptr`` of a ``Batch``) the cloud
    count is known on the host: one read. With ``uniform``, the points of every cloud as
    the host knows them (e.g. from the batch's offsets before it went to the device),
    nothing is read (:func:`check_cloud` verifies it when value checks are on).
    """
    if batch is None:
        counts = torch.full((1,), num_points, dtype=torch.long, device=device)
        zeros = torch.zeros(num_points, dtype=torch.long, device=device)
        return CloudLayout(zeros, 1, num_points, counts)
    if uniform is not None:
        num_clouds = ptr.numel() - 1 if ptr is not None else num_points // max(uniform, 1)
        if uniform < 1 or num_clouds * uniform != num_points:
            raise InputError(
                f"points per cloud: {uniform} does not divide the batch's {num_points} points "
                f"into {num_clouds} clouds"
            )
        counts = torch.full((num_clouds,), uniform, dtype=torch.long, device=batch.device)
        return CloudLayout(batch, num_clouds, uniform, counts)
    if ptr is not None:
        num_clouds = ptr.numel() - 1
        counts = torch.diff(ptr.to(batch.device)).long()
    else:
        num_clouds = int(batch[-1]) + 1 if batch.numel() else 0
    if num_clouds <= 0:
        return CloudLayout(batch, 0, None, batch.new_zeros(0))
    if ptr is None:
        # searchsorted on the sorted batch vector: no bincount (which reads its maximum)
        edges = torch.arange(num_clouds + 1, device=batch.device, dtype=batch.dtype)
        counts = torch.diff(torch.searchsorted(batch.contiguous(), edges)).long()
    smallest, largest = torch.stack([counts.min(), counts.max()]).tolist()
    uniform = smallest if smallest == largest else None
    return CloudLayout(batch, num_clouds, uniform, counts)


def host_uniform(ptr: Tensor | None) -> int | None:
    """The points of every cloud of a PyG batch still on the host, from its offsets
    ``ptr`` (``None`` when the clouds differ in size, or ``ptr`` is not on the CPU: a
    device tensor is never read here)."""
    if ptr is None or ptr.device.type != "cpu" or ptr.numel() < 2:
        return None
    sizes = np.diff(ptr.numpy())
    return int(sizes[0]) if (sizes == sizes[0]).all() and sizes[0] > 0 else None


def check_cloud(
    pos: Tensor,
    batch: Tensor | None = None,
    x: Tensor | None = None,
    *,
    x_channels: int | None = None,
    ptr: Tensor | None = None,
    uniform: int | None = None,
) -> CloudLayout:
    """Validate a packed batch and return its layout.

    Raises :class:`~pointea.errors.InputError` (a ``ValueError``) naming the argument for:
    a ``pos`` that is not a finite float ``(N, 3)`` tensor, an empty cloud, a ``batch``
    vector that is not integer, 1-D, of the same length as ``pos``, sorted and without
    gaps, and an ``x`` of the wrong row or channel count. Inside ``input_checks(False)``
    only the checks that read no tensor values run (see :func:`input_checks`). ``ptr``:
    PyG's cloud offsets, if at hand (saves a read, see :func:`layout_of`); ``uniform``:
    the points of every cloud when the caller knows it (no read).
    """
    values = input_checks_enabled()
    if not isinstance(pos, Tensor):
        raise InputError(f"pos: expected a torch.Tensor, got {type(pos).__name__}")
    if pos.dim() != 2 or pos.size(-1) != 3:
        raise InputError(f"pos: expected shape (num_points, 3), got {tuple(pos.shape)}")
    if not pos.is_floating_point():
        raise InputError(f"pos: expected a floating-point tensor, got {pos.dtype}")
    if pos.size(0) == 0:
        raise InputError("pos: the cloud is empty (0 points)")
    if values and not bool(torch.isfinite(pos).all()):
        bad = (~torch.isfinite(pos)).any(-1).nonzero()[:5].flatten().tolist()
        raise InputError(f"pos: non-finite coordinates (NaN or inf) at points {bad}")
    if batch is not None:
        if not isinstance(batch, Tensor) or batch.dim() != 1:
            raise InputError("batch: expected a 1-D integer tensor")
        if batch.dtype not in (torch.int64, torch.int32):
            raise InputError(f"batch: expected an integer tensor, got {batch.dtype}")
        if batch.numel() != pos.size(0):
            raise InputError(f"batch: has {batch.numel()} entries but pos has {pos.size(0)} points")
        batch = batch.long()
        if values:
            _check_batch_values(batch)
    if x is not None:
        if not isinstance(x, Tensor) or x.dim() != 2 or x.size(0) != pos.size(0):
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise InputError(f"x: expected shape ({pos.size(0)}, C), got {shape}")
        if x_channels is not None and x.size(1) != x_channels:
            raise InputError(f"x: expected {x_channels} channels, got {x.size(1)}")
        if values and not bool(torch.isfinite(x).all()):
            raise InputError("x: non-finite values (NaN or inf)")
    if ptr is not None and batch is not None:
        if not isinstance(ptr, Tensor) or ptr.dim() != 1 or ptr.numel() < 2:
            raise InputError("ptr: expected a 1-D tensor of cloud offsets (B + 1 entries)")
        if values and not torch.equal(ptr.to(batch.device)[1:-1], _batch_offsets(batch)):
            raise InputError("ptr: does not match the batch vector (PyG's Batch.ptr)")
    layout = layout_of(batch, pos.size(0), pos.device, ptr=ptr, uniform=uniform)
    if uniform is not None and batch is not None and values:
        expected = torch.arange(layout.num_clouds, device=batch.device).repeat_interleave(uniform)
        if not torch.equal(batch, expected):
            raise InputError(f"points per cloud: the clouds do not all have {uniform} points")
    return layout


def _batch_offsets(batch: Tensor) -> Tensor:
    """Inner cloud offsets of a sorted batch vector (where the index changes)."""
    return (torch.nonzero(batch[1:] != batch[:-1]).flatten() + 1).to(torch.long)


def _check_batch_values(batch: Tensor) -> None:
    steps = batch[1:] - batch[:-1]
    # one read of three flags instead of three synchronisations
    first, unsorted, gap = torch.stack(
        [batch[0] != 0, (steps < 0).any(), (steps > 1).any()]
    ).tolist()
    if first or unsorted:
        raise InputError("batch: must be sorted and start at 0 (PyG batch vector)")
    if gap:
        missing = int(batch[:-1][steps > 1][0]) + 1
        raise InputError(f"batch: cloud {missing} is empty (no point has that index)")
