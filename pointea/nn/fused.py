"""Fused layers with hand-written backward passes (exact; tested against autograd).

These keep the maths of the plain layer sequence and only change how much is written
to memory: the plain sequences are bandwidth-bound on CPUs, where every extra pass over
an activation-sized tensor costs as much as a small matrix product.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["batchnorm_relu_max", "fusable_norm", "sign_of_weight"]


def fusable_norm(norm: nn.Module) -> bool:
    """Whether :func:`batchnorm_relu_max` can stand in for ``norm`` followed by ReLU + max.

    A plain affine :class:`~torch.nn.BatchNorm1d`, or a synchronised one: a
    :class:`~torch.nn.SyncBatchNorm`, or any other batch norm that names the processes
    it synchronises over in a ``process_group`` attribute (``None`` for all of them,
    as pointea's ``DistributedBatchNorm`` does). Other subclasses (their own ``forward``)
    take the plain layers.
    """
    if not isinstance(norm, nn.modules.batchnorm._BatchNorm) or not norm.affine:
        return False
    return type(norm) is nn.BatchNorm1d or hasattr(norm, "process_group")


def _sync_group(norm: nn.Module):
    """The process group whose batch ``norm`` shares in training, or ``None`` (local)."""
    if not (norm.training and hasattr(norm, "process_group")):
        return None
    if not (dist.is_available() and dist.is_initialized()):
        return None
    group = norm.process_group or dist.group.WORLD
    return group if dist.get_world_size(group) > 1 else None


def batchnorm_relu_max(
    y: Tensor, k: int, norm: nn.BatchNorm1d, sign: Tensor | None = None
) -> Tensor:
    """``relu(norm(y))`` max-pooled over consecutive groups of ``k`` rows, fused.

    ``y`` is ``(M * k, C)``; the result ``(M, C)``. Equal to
    ``F.relu(norm(y)).view(M, k, C).amax(1)`` (the batch norm in train mode uses and
    updates the statistics of all ``M * k`` rows), but never writes the normalised or
    activated ``(M * k, C)`` tensors: for a non-negative scale ``a`` the normalisation
    ``a y + b`` is increasing, so ``max(relu(a y + b)) = relu(a max(y) + b)``. The
    caller makes every scale non-negative by flipping the signs of the channels whose
    batch-norm weight is negative in the matrix product that makes ``y`` (see
    :func:`sign_of_weight`, passed as ``sign`` when the caller has it already);
    ``norm`` still sees and stores the unflipped statistics. The maxima are taken on
    ``y`` itself; where normalised values tie (a zero weight), the max's gradient goes to
    the row with the largest ``y`` (a valid subgradient; the plain layers pick one of
    the tied rows).

    Backward writes one dense ``(M * k, C)`` gradient (the batch statistics make it
    dense) instead of the three of autograd's max / ReLU / batch-norm backward.

    A synchronised ``norm`` (see :func:`fusable_norm`) in training takes the statistics
    of the rows of all its processes: forward all-reduces the per-channel sums and the
    centred sums of squares, backward the two per-channel gradient sums, exactly as the
    plain synchronised layer; its parameter gradients stay local (DDP averages them).
    """
    if sign is None:
        sign = sign_of_weight(norm)
    training = norm.training or norm.running_mean is None
    if norm.training and norm.track_running_stats and norm.num_batches_tracked is not None:
        norm.num_batches_tracked.add_(1)
    factor = 0.0
    if norm.training and norm.track_running_stats:
        factor = 1.0 / float(norm.num_batches_tracked) if norm.momentum is None else norm.momentum
    return _BatchNormReLUMax.apply(
        y, norm.weight * sign, norm.bias, sign, k, norm, training, factor, _sync_group(norm)
    )


def sign_of_weight(norm: nn.BatchNorm1d) -> Tensor:
    """``+1`` / ``-1`` per channel: the sign of the batch-norm weight (``+1`` for zero)."""
    return torch.where(norm.weight.detach() < 0, -1.0, 1.0).to(norm.weight.dtype)


class _BatchNormReLUMax(torch.autograd.Function):
    # torch's batch norm kernels do the passes over the (rows, C) tensors: their
    # statistics (``batch_norm_update_stats``: no normalised tensor written) are cheaper
    # than var_mean's over dim 0, and in evaluation mode the kernel is a fused, centred
    # per-channel affine map (used for the backward)

    @staticmethod
    def forward(ctx, y, weight, bias, sign, k, norm, training, factor, group):
        rows, channels = y.shape
        stat = weight.dtype
        total = rows
        if training and group is not None:
            mean, var, total = _global_moments(y.to(stat), group)
            if total <= 1:
                raise ValueError(
                    f"batch norm: expected more than 1 value per channel when training, "
                    f"got {total} rows over all processes"
                )
            if factor:
                with torch.no_grad():
                    unbiased = var * (total / (total - 1))
                    norm.running_mean.mul_(1 - factor).add_(sign * mean, alpha=factor)
                    norm.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)
        elif training:
            if rows <= 1:
                raise ValueError(
                    f"batch norm: expected more than 1 value per channel when training, "
                    f"got input of shape {tuple(y.shape)}"
                )
            # with momentum 1 the buffers receive this batch's mean and unbiased variance
            # (and the statistics come back in the buffers' precision, not y's)
            unbiased = torch.ones(channels, dtype=stat, device=y.device)
            mean, var = torch.batch_norm_update_stats(
                y, torch.zeros(channels, dtype=stat, device=y.device), unbiased, 1.0
            )  # var: the biased variance, the one that normalises
            if factor:
                with torch.no_grad():
                    norm.running_mean.mul_(1 - factor).add_(sign * mean, alpha=factor)
                    norm.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)
        else:
            mean, var = sign * norm.running_mean, norm.running_var
        invstd = torch.rsqrt(var + norm.eps)
        # every scale weight * invstd is >= 0: the normalisation is non-decreasing per
        # channel, so each group's maximum is that of y (never normalised as a whole)
        y_top, index = y.view(-1, k, channels).max(dim=1)  # (M, C)
        scaled = (y_top.to(stat) - mean) * invstd  # the normalised maxima
        out = F.relu(scaled * weight + bias).to(y.dtype)
        ctx.save_for_backward(y, index, scaled, out, weight, mean, var, invstd)
        ctx.training, ctx.k, ctx.eps = training, k, norm.eps
        ctx.group, ctx.total = group, total
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        y, index, scaled, out, weight, mean, var, invstd = ctx.saved_tensors
        rows, channels = y.shape
        grad = grad.to(weight.dtype) * (out > 0)  # through the ReLU, (M, C)
        grad_bias = grad.sum(dim=0)
        grad_weight = (grad * scaled).sum(dim=0)
        if ctx.training:
            sums = torch.stack([grad_bias, grad_weight])
            if ctx.group is not None:  # the statistics were those of all processes' rows
                sums = sums.clone()
                dist.all_reduce(sums, group=ctx.group)
            # the batch statistics spread the gradient over every row:
            # d y = invstd * (d xhat - mean(d xhat) - xhat * mean(d xhat * xhat)), and
            # d xhat is non-zero only at the maxima, so the means are per-channel sums;
            # the dense part, xhat * (-invstd * c2) - invstd * c1, is one batch-norm pass
            c1 = weight * sums[0] / ctx.total
            c2 = weight * sums[1] / ctx.total
            grad_y = F.batch_norm(y, mean, var, -c2 * invstd, -c1 * invstd, False, 0.0, ctx.eps)
        else:
            grad_y = torch.zeros_like(y)
        at_max = (grad * weight * invstd).to(y.dtype)  # d y at each group's maximum
        if grad_y.dtype in (torch.float32, torch.float64):
            grad_y.view(-1, ctx.k, channels).scatter_add_(
                1, index.unsqueeze(1), at_max.unsqueeze(1)
            )
        else:  # half-precision scatter_add_ is slow on CPUs; the positions are distinct
            flat = torch.arange(index.size(0), device=index.device).unsqueeze(1) * ctx.k + index
            flat = (flat * channels + torch.arange(channels, device=index.device)).view(-1)
            values = grad_y.view(-1).take(flat).add_(at_max.view(-1))
            _write_at(grad_y.view(-1), flat, values)
        return grad_y, grad_weight, grad_bias, None, None, None, None, None, None


def _write_at(flat_out: Tensor, index: Tensor, values: Tensor) -> None:
    """``flat_out[index] = values`` for distinct ``index``: ``put_``, or, when
    deterministic algorithms are requested, ``index_put_`` (no accumulation), which has a
    deterministic kernel on every device (CUDA has none for ``put_``)."""
    if torch.are_deterministic_algorithms_enabled():
        flat_out.index_put_((index,), values)
    else:
        flat_out.put_(index, values)


def _global_moments(y: Tensor, group) -> tuple[Tensor, Tensor, int]:
    """Per-channel mean and biased variance of the rows of ``y`` on all processes."""
    channels = y.size(1)
    first = torch.cat([y.sum(dim=0), y.new_tensor([y.size(0)])])
    dist.all_reduce(first, group=group)
    total = int(first[-1].item())
    mean = first[:channels] / total
    var = (y - mean).square_().sum(dim=0)
    dist.all_reduce(var, group=group)
    return mean, var / total, total
