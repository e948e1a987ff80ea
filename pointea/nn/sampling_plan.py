"""Farthest point sampling and kNN computed ahead, in the data loader's workers.

The centres and neighbours of the classifier's neighbour-embedding stages depend only on
the coordinates, so they can be computed per cloud where the clouds are prepared, off
the training step's critical path. :class:`PrecomputeSampling` (a PyG transform, the
last one of a split's pipeline) stores them on the sample as ``fps0, knn0, fps1, knn1,
...``: ``fps<s>`` the centres of stage ``s`` as rows of that stage's input points, in
FPS order, ``knn<s>`` ``(centres, k)`` their neighbours, nearest first. PyG's batching
offsets them per cloud (:class:`SampledCloud`), and :func:`plan_of` hands them to the
model, whose stages then skip their own sampling. The result is the same computation:
logits and gradients are equal to in-model sampling (``tests/nn/test_sampling_plan.py``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from ..errors import InputError
from ..ops import CloudLayout, farthest_point_sample, knn_groups

__all__ = ["PrecomputeSampling", "SampledCloud", "plan_of", "sampling_transform", "without_plan"]

#: one stage's precomputed sampling: centre rows ``(M,)`` and neighbour rows ``(M, k)``
StagePlan = tuple[Tensor, Tensor]


class SampledCloud(Data):
    """A cloud carrying its sampling plan; batching offsets ``fps<s>`` and ``knn<s>`` by
    the size of their stage's input (the cloud's points, then the previous centres)."""

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        level = _level(key)
        if level is None:
            return super().__inc__(key, value, *args, **kwargs)
        return self.num_nodes if level == 0 else self[f"fps{level - 1}"].numel()


def _level(key: str) -> int | None:
    for prefix in ("fps", "knn"):
        if key.startswith(prefix) and key[len(prefix) :].isdigit():
            return int(key[len(prefix) :])
    return None


class PrecomputeSampling(BaseTransform):
    """Compute a classifier's FPS centres and kNN groups for one cloud.

    Args:
        stages: ``(num_samples, k)`` of each neighbour-embedding stage, in order.
        random_start: start FPS at a random point (the stages' own setting).

    Raises:
        InputError: a stage would keep fewer than ``k`` points (its groups would not all
            have ``k`` neighbours; such clouds are sampled in the model).
    """

    def __init__(self, stages: list[tuple[int, int]], random_start: bool = False) -> None:
        self.stages = [(int(m), int(k)) for m, k in stages]
        self.random_start = bool(random_start)

    @torch.no_grad()
    def forward(self, data: Data) -> SampledCloud:
        out = SampledCloud()
        for key, value in data:
            out[key] = value
        pos = data.pos.detach().float()
        for s, (num_samples, k) in enumerate(self.stages):
            n = pos.size(0)
            if min(n, num_samples) < k or n < k:
                raise InputError(
                    f"precomputed sampling: stage {s} of a cloud of {data.pos.size(0)} points "
                    f"has {n} points for {num_samples} centres of {k} neighbours"
                )
            layout = CloudLayout(torch.zeros(n, dtype=torch.long), 1, n)
            centre, centre_layout = farthest_point_sample(
                pos, layout, num_samples, self.random_start
            )
            centre_pos = pos[centre]
            _, point, _ = knn_groups(pos, layout, centre_pos, centre_layout, k)
            out[f"fps{s}"] = centre
            out[f"knn{s}"] = point.view(-1, k)
            pos = centre_pos
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(stages={self.stages}, random_start={self.random_start})"


def sampling_transform(model: nn.Module) -> PrecomputeSampling | None:
    """The :class:`PrecomputeSampling` of ``model``'s neighbour-embedding stages, or
    ``None`` for a model without them (the segmenters)."""
    from .embedding import NeighborEmbedding

    module = getattr(model, "module", model)  # DistributedDataParallel
    stages = [m for m in getattr(module, "stages", []) if isinstance(m, NeighborEmbedding)]
    if not stages:
        return None
    starts = {m.random_start for m in stages}
    return PrecomputeSampling([(m.num_samples, m.k) for m in stages], starts.pop())


def plan_of(batch: Any) -> list[StagePlan] | None:
    """The batched sampling plan of a PyG batch of :class:`SampledCloud`, or ``None``."""
    plan: list[StagePlan] = []
    while f"fps{len(plan)}" in batch:
        s = len(plan)
        plan.append((batch[f"fps{s}"], batch[f"knn{s}"]))
    return plan or None


def without_plan(batch: Any) -> Any:
    """``batch`` without its sampling plan (for views whose coordinates change)."""
    for s in range(len(plan_of(batch) or [])):
        del batch[f"fps{s}"], batch[f"knn{s}"]
    return batch
