"""Distributed data-parallel training under ``torchrun``.

The training commands run unchanged under ``torchrun``; each process trains on its share
of every batch (``--batch-size`` is the *global* batch, split evenly), gradients are
averaged by :class:`~torch.nn.parallel.DistributedDataParallel`, metrics are summed
across processes, and only rank 0 writes files. Backend: NCCL on CUDA, gloo on CPU.

One machine, 4 processes (GPUs)::

    torchrun --nproc_per_node=4 -m pointea.cli.train --task modelnet40

Several machines (run on each, ``--node_rank`` 0..N-1; the rendezvous endpoint is
any reachable ``host:port`` of the first machine)::

    torchrun --nnodes=2 --nproc_per_node=8 --node_rank=0 \\
        --rdzv_backend=c10d --rdzv_endpoint=host0:29500 --rdzv_id=run42 \\
        -m pointea.cli.train --task modelnet40 --output-dir /shared/runs/ea

(or the static form ``--master_addr=host0 --master_port=29500``). ``--output-dir``
should be on a filesystem shared by the nodes so that ``--resume`` finds the checkpoint;
rank 0 reads it and sends it to the other processes.

BatchNorm statistics are synchronised across processes (``--sync-bn``, on by default):
with :class:`torch.nn.SyncBatchNorm` on GPUs, and with :class:`DistributedBatchNorm`
(a differentiable all-reduce of the batch moments) on CPU, where torch's SyncBatchNorm
refuses to run. With it, one step on N processes equals one step of a single process
on the combined batch (up to float rounding), dropout aside.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..devices import resolve_device
from ..errors import InputError

__all__ = [
    "DistContext",
    "DistributedBatchNorm",
    "ShardSampler",
    "all_reduce_sum",
    "barrier",
    "broadcast_object",
    "cleanup_distributed",
    "convert_batchnorm",
    "resolve_device",
    "setup_distributed",
]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a (possibly single-process) run.

    Args:
        rank: global rank.
        world_size: number of processes.
        local_rank: rank on this node.
        device: the torch device this process uses.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only process that writes files and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when several processes take part."""
        return self.world_size > 1

    def __repr__(self) -> str:
        return (
            f"DistContext(rank={self.rank}, world_size={self.world_size}, "
            f"local_rank={self.local_rank}, device={str(self.device)!r})"
        )


def setup_distributed(device: str = "auto") -> DistContext:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1).

    Without torchrun this returns a single-process context and starts nothing.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank, world_size)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(
            backend=backend,
            timeout=datetime.timedelta(minutes=30),
            device_id=dev if dev.type == "cuda" else None,
        )
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def cleanup_distributed() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait for every process (no-op when single-process)."""
    if ctx.distributed:
        dist.barrier()


def all_reduce_sum(tensor: Tensor, ctx: DistContext) -> Tensor:
    """Sum ``tensor`` over processes (returns a new CPU tensor; input untouched)."""
    if not ctx.distributed:
        return tensor.clone()
    # NCCL needs device tensors; gloo is happy with CPU ones
    work = tensor.detach().clone().to(ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.all_reduce(work, op=dist.ReduceOp.SUM)
    return work.cpu()


def broadcast_object(obj: Any, ctx: DistContext, src: int = 0) -> Any:
    """Send a picklable object from rank ``src`` to every process; returns it everywhere."""
    if not ctx.distributed:
        return obj
    box = [obj if ctx.rank == src else None]
    device = ctx.device if ctx.device.type == "cuda" else None
    dist.broadcast_object_list(box, src=src, device=device)
    return box[0]


class ShardSampler(torch.utils.data.Sampler[int]):
    """Evaluation sampler: rank ``r`` of ``w`` takes indices ``r, r + w, r + 2w, ...``.

    Unlike :class:`~torch.utils.data.distributed.DistributedSampler` it never repeats a
    sample to even out the shards, so metrics summed across processes count each sample
    exactly once.
    """

    def __init__(self, length: int, rank: int = 0, world_size: int = 1) -> None:
        self.length, self.rank, self.world_size = length, rank, world_size

    def __iter__(self):
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.world_size))

    def __repr__(self) -> str:
        return f"ShardSampler(length={self.length}, rank={self.rank}, world_size={self.world_size})"


class DistributedBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the batch of *all* processes.

    Works on any device and backend (gloo included): the per-channel sum and count, then
    the sum of squared deviations, are summed across processes with the differentiable
    :func:`torch.distributed.nn.functional.all_reduce`, so gradients flow through the
    shared statistics exactly as in a single process holding the whole batch. Outside
    training, or with one process, it is a plain BatchNorm. Its state dict keys are those
    of :class:`torch.nn.BatchNorm1d`.

    Shapes:
        input ``(N, C)`` or ``(N, C, L)`` (any ``(N, C, *)``).
    """

    # the processes it synchronises over (None: all); read by pointea.nn.fused
    process_group = None

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise InputError(f"DistributedBatchNorm expects (N, C, *), got {tuple(input.shape)}")

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        synced = (
            self.training
            and dist.is_available()
            and dist.is_initialized()
            and dist.get_world_size() > 1
        )
        if not synced:
            return super().forward(input)
        from torch.distributed.nn.functional import all_reduce

        channels = input.size(1)
        dims = [0, *range(2, input.dim())]
        count = input.new_tensor([input.numel() / channels])
        first = all_reduce(torch.cat([input.sum(dims), count]))
        total = first[-1]
        mean = first[:channels] / total
        shape = [1, channels] + [1] * (input.dim() - 2)
        centred = input - mean.view(shape)
        var = all_reduce((centred * centred).sum(dims)) / total  # biased, as BN normalises
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (
                    1.0 / float(self.num_batches_tracked)
                    if self.momentum is None
                    else self.momentum
                )
                unbiased = var * (total / (total - 1).clamp(min=1))
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(unbiased.detach(), alpha=factor)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def convert_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Replace every BatchNorm of ``module`` by its cross-process synchronised form.

    On CUDA this is :meth:`torch.nn.SyncBatchNorm.convert_sync_batchnorm`; elsewhere each
    ``BatchNorm{1,2,3}d`` becomes a :class:`DistributedBatchNorm` sharing the same
    parameters and buffers.
    """
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert_cpu(module)


def _convert_cpu(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, (DistributedBatchNorm, nn.SyncBatchNorm)
    ):
        new = DistributedBatchNorm(
            module.num_features,
            eps=module.eps,
            momentum=module.momentum,
            affine=module.affine,
            track_running_stats=module.track_running_stats,
        )
        if module.affine:
            with torch.no_grad():
                new.weight = module.weight
                new.bias = module.bias
        if module.track_running_stats:
            new.running_mean = module.running_mean
            new.running_var = module.running_var
            new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        replacement = _convert_cpu(child)
        if replacement is not child:
            setattr(module, name, replacement)
    return module
