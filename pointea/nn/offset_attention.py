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
        value, value_bias = attn.value_map()
        lin = self.transform.linear
        weight, bias = lin.weight, lin.bias
        with torch.autocast(x.device.type, enabled=False):  # tiny products, full precision
            read_weight = weight @ value  # (C, K)
            if value_bias is not None:
                bias = bias - weight @ value_bias
        pre = F.linear(x, weight, bias) - F.linear(feats, read_weight)
        return x + self.transform.activate(pre)
