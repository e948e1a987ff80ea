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
- kNN: each centre's ``min(k, n_i)`` nearest points of its own cloud, nearest first,
  computed per cloud (distances of a block of centres to all points, then ``topk``).
  **Ties** at equal distance go to the lower point index (as a stable sort); torch_cluster's
  CPU kernel (a k-d tree) orders them by its traversal, so on ties the two agree on the
  distances, not necessarily on the indices.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["fps", "knn", "pad_clouds"]

# bytes the kNN distance blocks may take off CUDA
_KNN_CPU_BUDGET = 256 * 2**20


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


def _knn_budget(device: torch.device) -> int:
    """Bytes the kNN distance blocks may take on ``device``: a quarter of the free device
    memory on CUDA (between 256 MiB and 4 GiB), else ``_KNN_CPU_BUDGET``."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(min(max(free // 4, 256 * 2**20), 4 * 2**30))
    return _KNN_CPU_BUDGET


def _sorted_keys(dist: Tensor) -> Tensor:
    """Keys ordering ``dist`` (float32, >= 0, along the last axis) by value, then column.

    The bits of a non-negative float32 grow with its value, so ``bits * width + column``
    is unique per row and orders equal distances by the lower column: ``topk`` on it
    gives the order of a stable sort, on every device.
    """
    width = dist.size(-1)
    columns = torch.arange(width, device=dist.device)
    return dist.view(torch.int32).long() * width + columns


def knn(
    pos: Tensor,
    sizes: Tensor,
    centres: Tensor,
    centre_sizes: Tensor,
    k: int,
    uniform: int | None = None,
    centre_uniform: int | None = None,
    memory_budget: int | None = None,
) -> Tensor:
    """Each centre's ``min(k, n_i)`` nearest points in its own cloud, nearest first.

    Works per cloud: the squared distances between a block of a cloud's centres and all
    of its points, ``(dx^2 + dy^2) + dz^2`` in the input's precision (the arithmetic of
    torch_cluster's CPU kernel), then the ``k`` smallest with ``topk`` (float32: on keys
    that break ties by the lower index; other dtypes: a stable sort). Blocks of clouds
    and centres are sized so that their distances fit ``memory_budget`` bytes.

    Args:
        pos: ``(N, 3)`` packed points of clouds of ``sizes`` ``(B,)``.
        centres: ``(M, 3)`` packed centres, ``centre_sizes`` ``(B,)`` per cloud.
        k: neighbours per centre.
        uniform: the common cloud size of ``pos`` when all are equal (no padding, and
            with ``uniform >= k`` no read of values back from the device).
        centre_uniform: the common number of centres per cloud, when all are equal
            (else one read of the largest count).
        memory_budget: bytes for the distance blocks (default: from the device's free
            memory on CUDA, 256 MiB elsewhere).

    Returns:
        ``(2, E)`` edges ``[centre index, point index]``, grouped by centre.
    """
    dense, starts = pad_clouds(pos, sizes, uniform)  # (B, W, 3)
    cdense, cstarts = pad_clouds(centres, centre_sizes, centre_uniform)  # (B, C, 3)
    num_clouds, width = dense.shape[:2]
    per_cloud = cdense.size(1)
    keep = min(k, width)
    budget = _knn_budget(pos.device) if memory_budget is None else memory_budget
    # per (centre, point) pair: the distance, a coordinate term and the int64 key
    pair_bytes = 2 * dense.element_size() + 8
    block = max(1, budget // max(pair_bytes * width, 1))  # (centre, cloud) rows at a time
    cloud_step = max(1, min(num_clouds, block // max(per_cloud, 1)))
    centre_step = max(1, min(per_cloud, block))
    padded = None if uniform is not None else torch.arange(width, device=pos.device)
    order = torch.empty(num_clouds, per_cloud, keep, dtype=torch.long, device=pos.device)
    for c0 in range(0, num_clouds, cloud_step):
        pts = dense[c0 : c0 + cloud_step].unsqueeze(1)  # (b, 1, W, 3)
        for m0 in range(0, per_cloud, centre_step):
            ctr = cdense[c0 : c0 + cloud_step, m0 : m0 + centre_step].unsqueeze(2)  # (b, m, 1, 3)
            # one (b, m, W) block per coordinate: no (b, m, W, 3) copy of the cloud
            dist = (ctr[..., 0] - pts[..., 0]).square_()
            dist += (ctr[..., 1] - pts[..., 1]).square_()
            dist += (ctr[..., 2] - pts[..., 2]).square_()
            if padded is not None:
                outside = padded >= sizes[c0 : c0 + cloud_step].view(-1, 1, 1)
                dist.masked_fill_(outside, float("inf"))
            if dist.dtype == torch.float32:
                top = torch.topk(_sorted_keys(dist), keep, dim=-1, largest=False).indices
            else:
                top = torch.sort(dist, dim=-1, stable=True).indices[..., :keep]
            order[c0 : c0 + cloud_step, m0 : m0 + centre_step] = top
    point = order + starts.view(-1, 1, 1)  # (B, C, keep)
    found = torch.arange(keep, device=pos.device) < sizes.view(-1, 1, 1)  # (B, 1, keep)
    index = cstarts.view(-1, 1) + torch.arange(per_cloud, device=pos.device)  # (B, C)
    centre = index.unsqueeze(-1).expand_as(point)
    if centre_uniform is not None and uniform is not None and uniform >= k:
        return torch.stack([centre.flatten(), point.flatten()])
    real = torch.arange(per_cloud, device=pos.device) < centre_sizes.view(-1, 1)  # (B, C)
    mask = real.unsqueeze(-1) & found
    return torch.stack([centre[mask], point[mask]])
