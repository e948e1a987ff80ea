"""PCT's offset-attention layer, with external or self attention inside."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from ..ops import CloudLayout, layout_of
from .common import LBR
from .external_attention import ExternalAttention
from .self_attention import SelfAttention

AttentionKind = Literal["external", "self"]


def make_attention(
    kind: str,
    channels: int,
    memory_units: int = 64,
    heads: int = 1,
    tie_memories: bool = False,
) -> nn.Module:
    """The attention module of the given kind (``"external"`` or ``"self"``)."""
    if kind == "external":
        return ExternalAttention(channels, memory_units, heads=heads, tie_memories=tie_memories)
    if kind == "self":
        return SelfAttention(channels)
    raise InputError(f"attention: expected 'external' or 'self', got {kind!r}")


class OffsetAttention(nn.Module):
    r"""Offset attention: :math:`F_{out} = \mathrm{LBR}(F_{in} - F_{att}) + F_{in}`.

    From PCT (https://arxiv.org/abs/2012.09688). ``F_att`` is
    :class:`ExternalAttention` (pointea's default) or PCT's :class:`SelfAttention`
    (the baseline); the LBR is linear (with bias) + BatchNorm + ReLU.

    Args:
        channels: features per point.
        attention: ``"external"`` or ``"self"``.
        memory_units: external attention's memory size.
        heads: external attention's heads.
        tie_memories: external attention with ``M_v = M_k^T``.

    Shapes:
        - input: ``x`` ``(N, C)``, ``batch`` ``(N,)`` or ``None``
        - output: ``(N, C)``
    """

    def __init__(
        self,
        channels: int,
        attention: AttentionKind = "external",
        memory_units: int = 64,
        heads: int = 1,
        tie_memories: bool = False,
    ) -> None:
        super().__init__()
        self.attention = make_attention(attention, channels, memory_units, heads, tie_memories)
        self.transform = LBR(channels, channels, bias=True)

    def forward(
        self,
        x: Tensor,
        batch: Tensor | None = None,
        layout: CloudLayout | None = None,
        log_normalizer: Tensor | None = None,
    ) -> Tensor:
        """``log_normalizer``: external attention's per-cloud softmax normaliser when
        already known (streaming inference); see :meth:`ExternalAttention.normalise`."""
        if layout is None:
            layout = layout_of(batch, x.size(0), x.device)
        attn = self.attention
        if not isinstance(attn, ExternalAttention):
            return x + self.transform(x - attn(x, layout=layout))
        # external attention's read-out is linear, F_att = R V^T + b, so the transform's
        # linear map of (x - F_att) is W x + (b_t - W b) - R (W V)^T: exact, and the
        # difference x - F_att is never materialised or kept for backward
        feats = attn.read_features(attn.normalise(attn.logits(x), layout, log_normalizer))
        weight, bias, read_weight = self._transform_maps()
        pre = F.linear(x, weight, bias) - F.linear(feats, read_weight)
        return x + self.transform.activate(pre)

    @property
    def channels(self) -> int:
        """Features per point (input and output)."""
        return self.transform.out_channels

    @property
    def is_external(self) -> bool:
        """Whether ``F_att`` is external attention (linear in the number of points, so a
        cloud can be processed chunk by chunk; see :mod:`pointea.models.streaming`)."""
        return isinstance(self.attention, ExternalAttention)

    @property
    def activation(self) -> nn.Module:
        """The activation of the transform ``LBR`` (an in-place ReLU)."""
        return self.transform.activation

    def _transform_maps(self) -> tuple[Tensor, Tensor, Tensor]:
        # the transform's linear map of x - F_att with F_att = R V^T + b written out:
        # W x + (b_t - W b) - R (W V)^T, as (W, b_t - W b, W V)
        value, value_bias = self.attention.value_map()
        lin = self.transform.linear
        weight, bias = lin.weight, lin.bias
        with torch.autocast(weight.device.type, enabled=False):  # tiny products, full precision
            read_weight = weight @ value  # (C, K)
            if value_bias is not None:
                bias = bias - weight @ value_bias
        return weight, bias, read_weight

    def folded(self) -> tuple[Tensor, Tensor, Tensor]:
        """The evaluation-mode layer with external attention as affine maps.

        Returns ``(weight, bias, read)`` with, for attention weights ``A`` of the input
        ``x`` (:meth:`ExternalAttention.normalise`) and
        ``R = self.attention.read_features(A)`` (``(N, K)``)::

            self(x) == x + self.activation(x @ weight.T + bias - R @ read.T)

        in eval mode (up to rounding): the attention's read-out and the transform's
        batch norm are folded in.

        Raises:
            InputError: the layer uses self-attention (its read-out is not linear).
        """
        if not self.is_external:
            raise InputError("attention: only external attention folds into affine maps")
        weight, bias, read_weight = self._transform_maps()
        weight, bias = self.transform.fold(weight, bias)
        read, _ = self.transform.fold(read_weight, None)
        return weight, bias, read
