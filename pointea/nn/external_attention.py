"""External attention (Guo et al., 2021) on packed point clouds."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from ..ops import CloudLayout, layout_of, segment_softmax


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

    The linear maps around the memories are applied in the cheaper order: the input
    projection and ``M_k`` as one ``(heads * S) x d`` product (:meth:`key_map`), and
    ``M_v`` with the output projection (:meth:`value_map`); the parameters are the
    plain layers' own. :class:`OffsetAttention` folds :meth:`value_map` further into its
    transform.

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

    @property
    def _folding_is_cheaper(self) -> bool:
        # a memory and its projection as ONE map, (heads * S) x d, costs fewer products
        # per point than projecting to the inner width first (always, with one head)
        inner = self.heads * self.head_channels
        return self.channels * self.heads * self.memory_units <= inner * (
            self.channels + self.memory_units
        )

    @property
    def _fold_key(self) -> bool:
        # x -> in_proj -> memory_key: the projected features are then never materialised
        # or kept for backward
        return self.in_proj is None or self._folding_is_cheaper

    @property
    def _fold_value(self) -> bool:
        # memory_value -> out_proj (one head: no out_proj, nothing to fold, same thing)
        return self.out_proj is None or self._folding_is_cheaper

    def _memory_value(self) -> Tensor:
        """``M_v`` as a ``(head_channels, S)`` matrix (``M_k^T`` when tied)."""
        return self.memory_key.weight.t() if self.memory_value is None else self.memory_value.weight

    def key_map(self) -> tuple[Tensor, Tensor | None]:
        """Weight ``(heads * S, d)`` and bias of the map from features to memory logits.

        With the input projection this is the product ``M_k W_in`` (per head), exact
        algebra: ``M_k (W_in x + b) = (M_k W_in) x + M_k b``.
        """
        mk = self.memory_key.weight  # (S, head_channels)
        if self.in_proj is None:
            return mk, None
        w = self.in_proj.weight.view(self.heads, self.head_channels, self.channels)
        with torch.autocast(mk.device.type, enabled=False):  # tiny products, full precision
            weight = torch.matmul(mk, w).reshape(self.heads * self.memory_units, self.channels)
            bias = self.in_proj.bias.view(self.heads, self.head_channels) @ mk.t()
        return weight, bias.reshape(-1)

    def logits(self, x: Tensor) -> Tensor:
        """Memory affinities before normalisation: ``(N, d) -> (N, heads, S)``."""
        if x.dim() != 2 or x.size(-1) != self.channels:
            raise InputError(
                f"x: expected shape (num_points, {self.channels}), got {tuple(x.shape)}"
            )
        if self._fold_key:
            return F.linear(x, *self.key_map()).view(x.size(0), self.heads, self.memory_units)
        q = self.in_proj(x).view(x.size(0), self.heads, self.head_channels)
        return self.memory_key(q)

    def normalise(
        self,
        logits: Tensor,
        layout: CloudLayout,
        log_normalizer: Tensor | None = None,
    ) -> Tensor:
        """The double normalisation of :meth:`logits`: ``(N, heads, S)`` attention weights.

        Args:
            logits: ``(N, heads, S)``.
            layout: the clouds' layout.
            log_normalizer: ``(B, heads * S)`` per-cloud log-sum-exp of the logits over
                the points, when already known (streaming inference accumulates it over
                chunks with :func:`pointea.ops.segment_logsumexp`); else computed here.
        """
        if log_normalizer is None:
            return _DoubleNorm.apply(logits, layout, self.eps)
        weights = torch.exp(logits - log_normalizer[layout.batch].view_as(logits))
        return weights / (self.eps + weights.sum(dim=-1, keepdim=True))

    def value_map(self) -> tuple[Tensor, Tensor | None]:
        """Weight ``(d, K)`` and bias of the (linear) read-out: ``out = F V^T + b``.

        ``F`` is :meth:`read_features` of the attention weights (``K = heads * S`` when
        the memory read and the output projection are folded into one map).
        """
        mv = self._memory_value()  # (head_channels, S)
        if self.out_proj is None:
            return mv, None
        if not self._fold_value:
            return self.out_proj.weight, self.out_proj.bias
        wo = self.out_proj.weight.view(self.channels, self.heads, self.head_channels)
        with torch.autocast(mv.device.type, enabled=False):
            weight = torch.matmul(wo.transpose(0, 1), mv)  # (heads, d, S)
        return weight.transpose(0, 1).reshape(self.channels, -1), self.out_proj.bias

    def read_features(self, weights: Tensor) -> Tensor:
        """What :meth:`value_map` applies to: ``(N, heads, S)`` weights -> ``(N, K)``."""
        if self.out_proj is None or self._fold_value:
            return weights.flatten(1)
        per_head = F.linear(weights, self._memory_value())  # (N, heads, head_channels)
        return per_head.flatten(1)

    def read(self, weights: Tensor) -> Tensor:
        """Read the memory with normalised weights: ``(N, heads, S) -> (N, d)``."""
        return F.linear(self.read_features(weights), *self.value_map())

    def attend(self, logits: Tensor, log_normalizer: Tensor, batch: Tensor) -> Tensor:
        """:meth:`read` after :meth:`normalise` with a given per-cloud normaliser."""
        layout = CloudLayout(batch, log_normalizer.size(0), None)
        return self.read(self.normalise(logits, layout, log_normalizer))

    def forward(
        self, x: Tensor, batch: Tensor | None = None, layout: CloudLayout | None = None
    ) -> Tensor:
        if layout is None:
            layout = layout_of(batch, x.size(0), x.device)
        return self.read(self.normalise(self.logits(x), layout))

    def extra_repr(self) -> str:
        return (
            f"{self.channels}, memory_units={self.memory_units}, heads={self.heads}, "
            f"tie_memories={self.tie_memories}"
        )


class _DoubleNorm(torch.autograd.Function):
    """Softmax over each cloud's points, then l1 over the memory units, keeping only
    the result (and the l1 divisor) for backward.

    Autograd would keep the softmax output as well as the result; the softmax output is
    ``result * divisor``, so it is rebuilt in backward instead (one activation-sized
    tensor less per layer). Computed in at least float32 (under autocast too): the sums
    run over every point of a cloud.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, layout: CloudLayout, eps: float) -> Tensor:
        shape = logits.shape
        dtype = torch.promote_types(logits.dtype, torch.float32)
        soft = segment_softmax(logits.flatten(1).to(dtype), layout).view(shape)
        divisor = soft.sum(dim=-1, keepdim=True).add_(eps)
        weights = soft.div_(divisor)
        ctx.layout, ctx.dtype = layout, logits.dtype
        ctx.save_for_backward(weights, divisor)
        return weights

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        weights, divisor = ctx.saved_tensors
        layout: CloudLayout = ctx.layout
        grad = grad.to(weights.dtype)
        # l1 over the memory: d soft = (g - sum_S(g * w)) / divisor
        grad_soft = grad - (grad * weights).sum(dim=-1, keepdim=True)
        grad_soft.div_(divisor)
        soft = weights * divisor
        # softmax over the points of each cloud: d logits = soft * (d soft - sum_points(.))
        flat = (grad_soft * soft).flatten(1)  # (N, heads * S)
        if layout.uniform is not None:
            total = flat.view(layout.num_clouds, layout.uniform, -1).sum(dim=1, keepdim=True)
            grad_soft.view(layout.num_clouds, layout.uniform, -1).sub_(total)
        else:
            total = flat.new_zeros(layout.num_clouds, flat.size(1)).index_add_(
                0, layout.batch, flat
            )
            grad_soft.sub_(total.index_select(0, layout.batch).view_as(grad_soft))
        return grad_soft.mul_(soft).to(ctx.dtype), None, None
