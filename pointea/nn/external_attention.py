"""External attention (Guo et al., 2021) on packed point clouds."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from ..ops import CloudLayout, layout_of, segment_logsumexp


class ExternalAttention(nn.Module):
    r"""External attention with two learnable memories shared by the whole dataset.

    From "Beyond Self-attention: External Attention using Two Linear Layers for Visual
    Tasks" (Guo, Liu, Mu, Hu; https://arxiv.org/abs/2105.02358). For the features
    :math:`F` (``N x d``) of one cloud:

    .. math::
        A = \mathrm{Norm}(F M_k^\top), \qquad F_{out} = A M_v

    with memories :math:`M_k, M_v \in \mathbb{R}^{S \times d}`. ``Norm`` is the double
    normalisation: a softmax over the **points of each cloud** (for every memory unit
    the weights over that cloud's points sum to one; a segment softmax on the batch
    vector, so a cloud's output never depends on its batch-mates), then an l1
    normalisation over the memory units (each point's ``S`` weights sum to one,
    ``eps`` in the divisor). Cost ``O(N S d)``: linear in the number of points.

    With ``heads > 1`` this is the multi-head form (MEA): features are projected to
    ``expansion * d``, split into heads that all attend to the same memories, and
    projected back to ``d``.

    Args:
        channels: features per point ``d``.
        memory_units: memory size ``S`` (default 64, the paper's).
        heads: number of heads (1 = single-head EA).
        expansion: width multiplier of the multi-head projection (used when ``heads > 1``).
        tie_memories: use ``M_v = M_k^T`` (one memory) instead of two independent ones.
        in_proj: apply a learned linear map to the features before the memory
            (the official block's input 1x1 convolution).
        eps: the l1 normalisation's epsilon.

    Shapes:
        - input: ``x`` ``(N, d)``, ``batch`` ``(N,)`` or ``None``
        - output: ``(N, d)``
    """

    def __init__(
        self,
        channels: int,
        memory_units: int = 64,
        heads: int = 1,
        expansion: int = 4,
        tie_memories: bool = False,
        in_proj: bool = True,
        eps: float = 1e-9,
    ) -> None:
        super().__init__()
        if memory_units < 1 or heads < 1 or channels < 1:
            raise InputError("channels, memory_units and heads must be >= 1")
        inner = channels * expansion if heads > 1 else channels
        if inner % heads:
            raise InputError(f"heads: {heads} does not divide the inner width {inner}")
        self.channels = channels
        self.memory_units = memory_units
        self.heads = heads
        self.head_channels = inner // heads
        self.tie_memories = tie_memories
        self.eps = eps
        self.in_proj = nn.Linear(channels, inner) if (in_proj or heads > 1) else None
        self.memory_key = nn.Linear(self.head_channels, memory_units, bias=False)  # M_k
        self.memory_value = (
            None if tie_memories else nn.Linear(memory_units, self.head_channels, bias=False)
        )  # M_v
        self.out_proj = nn.Linear(inner, channels) if heads > 1 else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.in_proj, self.out_proj, self.memory_key, self.memory_value):
            if lin is not None:
                lin.reset_parameters()

    def logits(self, x: Tensor) -> Tensor:
        """Memory affinities before normalisation: ``(N, d) -> (N, heads, S)``."""
        if x.dim() != 2 or x.size(-1) != self.channels:
            raise InputError(
                f"x: expected shape (num_points, {self.channels}), got {tuple(x.shape)}"
            )
        q = self.in_proj(x) if self.in_proj is not None else x
        q = q.view(x.size(0), self.heads, self.head_channels)
        return self.memory_key(q)

    def attend(self, logits: Tensor, log_normalizer: Tensor, batch: Tensor) -> Tensor:
        """Apply the double normalisation with a given normaliser and read the memory.

        Args:
            logits: ``(N, heads, S)`` from :meth:`logits`.
            log_normalizer: ``(B, heads * S)`` per-cloud log-sum-exp of the logits over
                the points (:func:`pointea.ops.segment_logsumexp`). Passing it in lets
                streaming inference compute it over all points first, chunk by chunk.
            batch: ``(N,)`` cloud index of each point.

        Returns:
            ``(N, d)``.
        """
        weights = torch.exp(logits - log_normalizer[batch].view_as(logits))
        return self._read(weights)

    def _read(self, weights: Tensor) -> Tensor:
        # weights: (N, H, S), softmax-normalised over each cloud's points
        weights = weights / (self.eps + weights.sum(dim=-1, keepdim=True))  # l1 over memory
        value = (
            self.memory_key.weight.t() if self.memory_value is None else self.memory_value.weight
        )
        out = F.linear(weights, value).reshape(weights.size(0), self.heads * self.head_channels)
        return self.out_proj(out) if self.out_proj is not None else out

    def forward(
        self, x: Tensor, batch: Tensor | None = None, layout: CloudLayout | None = None
    ) -> Tensor:
        if layout is None:
            layout = layout_of(batch, x.size(0), x.device)
        logits = self.logits(x)  # (N, H, S)
        if layout.uniform is not None:  # dense fast path: a plain softmax over the points axis
            shape = (layout.num_clouds, layout.uniform, self.heads, self.memory_units)
            return self._read(torch.softmax(logits.view(shape), dim=1).view_as(logits))
        return self.attend(logits, segment_logsumexp(logits.flatten(1), layout), layout.batch)

    def extra_repr(self) -> str:
        return (
            f"{self.channels}, memory_units={self.memory_units}, heads={self.heads}, "
            f"tie_memories={self.tie_memories}"
        )
