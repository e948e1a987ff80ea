"""Farthest point sampling and k-nearest neighbours in plain torch, for any device.

Used where torch_cluster has no kernels for the input's device (a CPU-only torch-cluster
build next to a CUDA torch is common) or when asked for (``POINTEA_SAMPLING=torch``, see
:func:`pointea.ops.sampling_backend`). Both work on packed clouds described by their
sizes, batched: the clouds are padded to ``(B, N_max, 3)`` and processed together, so the
cost is one small kernel per FPS step, not one per cloud.

Results equal torch_cluster's CPU kernels (tested):

- FPS: each cloud starts at its first point (or a random one), then repeatedly takes the
  point with the largest squared distance to the chosen set, computed as
  ``(p - q).pow(2).sum(-1)`` in float32 like the CPU kernel. **Ties** go to the lowest
  index (``argmax`` returns the first maximum), as on CPU. torch_cluster's CUDA kernel
  breaks ties differently, and its random start uses another generator.
- kNN: each centre's ``min(k, n_i)`` nearest points of its own cloud, nearest first.
  **Ties** at equal distance go to the lower point index (a stable sort); torch_cluster's
  CPU kernel (a k-d tree) orders them by its traversal, so on ties the two agree on the
  distances, not necessarily on the indices.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["fps", "knn", "pad_clouds"]

# pairwise distances are computed for this many (centre, point) pairs at a time
_KNN_CHUNK_PAIRS = 1 << 22


def pad_clouds(pos: Tensor, sizes: Tensor, uniform: int | None = None) -> tuple[Tensor, Tensor]:
    """Packed ``(N, C)`` rows of clouds of ``sizes`` -> ``(B, N_max, C)`` zero-padded, and
    ``(B,)`` the first row of each cloud in ``pos``."""
    starts = torch.cumsum(sizes, 0) - sizes
    if uniform is not None:
        return pos.view(sizes.numel(), uniform, pos.size(1)), starts
    width = int(sizes.max())
    batch = torch.repeat_interleave(
        torch.arange(sizes.numel(), device=pos.device), sizes, output_size=pos.size(0)
    )
    local = torch.arange(pos.size(0), device=pos.device) - starts[batch]
    dense = pos.new_zeros(sizes.numel(), width, pos.size(1))
    dense[batch, local] = pos
    return dense, starts


def fps(
    pos: Tensor,
    sizes: Tensor,
    num_samples: int,
    random_start: bool = False,
    uniform: int | None = None,
) -> Tensor:
    """``min(num_samples, n_i)`` farthest points of every cloud, as indices into ``pos``.

    Args:
        pos: ``(N, 3)`` packed coordinates (float32 for results equal to torch_cluster).
        sizes: ``(B,)`` points per cloud.
        num_samples: centres per cloud.
        random_start: start every cloud at a uniformly random point.
        uniform: the common cloud size when all are equal (skips the padding).

    Returns:
        ``(sum_i min(num_samples, n_i),)`` indices, grouped by cloud, in FPS order.
    """
    dense, starts = pad_clouds(pos, sizes, uniform)  # (B, W, 3)
    num_clouds, width = dense.shape[:2]
    steps = min(num_samples, width)
    rows = torch.arange(num_clouds, device=pos.device)
    valid = torch.arange(width, device=pos.device) < sizes.unsqueeze(1)  # (B, W)
    if random_start:
        first = (torch.rand(num_clouds, device=pos.device) * sizes).long()
        first = torch.minimum(first, sizes - 1)
    else:
        first = torch.zeros(num_clouds, dtype=torch.long, device=pos.device)
    chosen = first.new_empty(num_clouds, steps)
    chosen[:, 0] = first
    # padding is -1: never the farthest, and min(-1, d) keeps it there
    dist = (dense - dense[rows, first].unsqueeze(1)).pow(2).sum(-1).masked_fill(~valid, -1.0)
    for i in range(1, steps):
        pick = dist.argmax(dim=1)  # (B,) first maximum on ties
        chosen[:, i] = pick
        dist = torch.minimum(dist, (dense - dense[rows, pick].unsqueeze(1)).pow(2).sum(-1))
    chosen = chosen + starts.unsqueeze(1)
    if uniform is not None:
        return chosen.flatten()
    keep = torch.arange(steps, device=pos.device) < sizes.clamp(max=num_samples).unsqueeze(1)
    return chosen[keep]


def knn(
    pos: Tensor,
    sizes: Tensor,
    centres: Tensor,
    centre_sizes: Tensor,
    k: int,
    uniform: int | None = None,
) -> Tensor:
    """Each centre's ``min(k, n_i)`` nearest points in its own cloud, nearest first.

    Args:
        pos: ``(N, 3)`` packed points of clouds of ``sizes`` ``(B,)``.
        centres: ``(M, 3)`` packed centres, ``centre_sizes`` ``(B,)`` per cloud.
        k: neighbours per centre.
        uniform: the common cloud size of ``pos`` when all are equal (no padding, and
            with ``uniform >= k`` no read of values back from the device).

    Returns:
        ``(2, E)`` edges ``[centre index, point index]``, grouped by centre.
    """
    dense, starts = pad_clouds(pos, sizes, uniform)  # (B, W, 3)
    width = dense.size(1)
    keep = min(k, width)
    centre_cloud = torch.repeat_interleave(
        torch.arange(sizes.numel(), device=pos.device), centre_sizes, output_size=centres.size(0)
    )  # (M,)
    chunk = max(1, _KNN_CHUNK_PAIRS // max(width, 1))
    columns = torch.arange(width, device=pos.device)
    picks, found = [], []
    for lo in range(0, centres.size(0), chunk):
        cloud = centre_cloud[lo : lo + chunk]
        d = (dense[cloud] - centres[lo : lo + chunk].unsqueeze(1)).pow(2).sum(-1)  # (c, W)
        d = d.masked_fill(columns >= sizes[cloud].unsqueeze(1), float("inf"))
        order = torch.sort(d, dim=1, stable=True).indices[:, :keep]  # (c, keep)
        picks.append(order + starts[cloud].unsqueeze(1))
        found.append(torch.arange(keep, device=pos.device) < sizes[cloud].unsqueeze(1))
    point = torch.cat(picks)
    centre = torch.arange(centres.size(0), device=pos.device).unsqueeze(1).expand_as(point)
    if uniform is not None and uniform >= k:  # every centre has k neighbours
        return torch.stack([centre.flatten(), point.flatten()])
    mask = torch.cat(found)
    return torch.stack([centre[mask], point[mask]])
