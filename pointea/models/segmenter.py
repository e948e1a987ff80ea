"""The PCT part segmenter, with external (default) or self attention."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from ..nn import LBR, OffsetAttention
from ..nn.common import check_call_order, point_input
from ..nn.offset_attention import AttentionKind
from ..ops import CloudLayout, check_cloud, max_mean_pool

_HEAD_CHUNK = 16_384  # points per slice of the per-point head at inference


class PCTSegmenter(nn.Module):
    """PCT's part-segmentation network (https://arxiv.org/abs/2012.09688).

    Per-point LBRs (xyz -> ``embed_channels``), a stack of offset-attention layers on
    all points, their outputs concatenated and fused (LBR, LeakyReLU), the cloud's max-
    and mean-pooled fused features and an embedding of the object category repeated to
    every point, then a per-point MLP to part logits. There is no neighbour embedding
    (as in the released network); every point keeps its own prediction.

    Args:
        num_parts: output classes per point (50 for ShapeNetPart).
        num_categories: object categories (16 for ShapeNetPart); ``category`` is an index.
        in_channels: 3 (xyz) or 6 (xyz + normals, read from ``x``).
        attention: ``"external"`` or ``"self"``.
        memory_units: external attention's memory size ``S``.
        heads: external attention's heads.
        tie_memories: external attention with ``M_v = M_k^T``.
        embed_channels: per-point width of the embedding and the attention layers.
        num_attention_layers: stacked offset-attention layers.
        fuse_channels: width after fusing the attention outputs.
        category_channels: width of the category embedding.
        head_channels: hidden widths of the per-point head.
        dropout: dropout after the head's first layer.
        negative_slope: LeakyReLU slope of the fusion and category layers.

    Shapes:
        - input: ``pos`` ``(N, 3)``, ``category`` ``(B,)`` int64, ``batch`` ``(N,)`` or
          ``None``, ``x`` ``(N, 3)`` normals when ``in_channels == 6``
        - output: logits ``(N, num_parts)``

    Stages (public; :mod:`pointea.models.streaming` folds them into its chunked pass):
        - ``point_embed``: the per-point :class:`~pointea.nn.LBR` layers, in order;
        - ``attention``: the :class:`~pointea.nn.OffsetAttention` layers, in order;
        - ``fuse``: the :class:`~pointea.nn.LBR` on the attention outputs side by side
          (:meth:`point_features`);
        - ``category_embed``: the category one-hot -> ``category_channels``
          (:meth:`global_features`);
        - ``head1``, ``head2`` (:class:`~pointea.nn.LBR`) and ``classifier``
          (:class:`~torch.nn.Linear`): the per-point head (:meth:`head`); ``head1`` acts
          on ``[fused, context]``, its weight split by :meth:`head_weights`.
    """

    def __init__(
        self,
        num_parts: int = 50,
        num_categories: int = 16,
        in_channels: int = 3,
        attention: AttentionKind = "external",
        memory_units: int = 64,
        heads: int = 1,
        tie_memories: bool = False,
        embed_channels: int = 128,
        num_attention_layers: int = 4,
        fuse_channels: int = 1024,
        category_channels: int = 64,
        head_channels: Sequence[int] = (512, 256),
        dropout: float = 0.5,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if in_channels not in (3, 6):
            raise InputError(f"in_channels: expected 3 or 6, got {in_channels}")
        if len(head_channels) != 2:
            raise InputError("head_channels: expected two hidden widths")
        self.in_channels = in_channels
        self.num_categories = num_categories
        self.point_embed = nn.Sequential(
            LBR(in_channels, embed_channels), LBR(embed_channels, embed_channels)
        )
        self.attention = nn.ModuleList(
            OffsetAttention(embed_channels, attention, memory_units, heads, tie_memories)
            for _ in range(num_attention_layers)
        )
        self.fuse = LBR(
            embed_channels * num_attention_layers, fuse_channels, negative_slope=negative_slope
        )
        self.category_embed = LBR(num_categories, category_channels, negative_slope=negative_slope)
        self.head1 = LBR(3 * fuse_channels + category_channels, head_channels[0], bias=True)
        self.dropout = nn.Dropout(dropout)
        self.head2 = LBR(head_channels[0], head_channels[1], bias=True)
        self.classifier = nn.Linear(head_channels[1], num_parts)

    def forward(
        self,
        x: Tensor | None = None,
        pos: Tensor | None = None,
        batch: Tensor | None = None,
        *,
        category: Tensor,
    ) -> Tensor:
        """Part logits ``(N, num_parts)`` of PyG's ``(x, pos, batch)`` packing and each
        cloud's ``category`` ``(B,)`` (``x``: normals of a 6-channel model, else ``None``)."""
        pos = check_call_order(x, pos, batch)
        layout = check_cloud(pos, batch, x if self.in_channels == 6 else None, x_channels=3)
        category = self.check_category(category, layout.num_clouds)
        fused = self.point_features(pos, layout, x)  # (N, fuse)
        pooled_max, pooled_mean = max_mean_pool(fused, layout)
        context = self.global_features(pooled_max, pooled_mean, category)
        n = fused.size(0)
        if self.training or torch.is_grad_enabled() or n <= _HEAD_CHUNK:
            return self.head(fused, context, layout.batch)
        # inference on many points: the head is per point (BatchNorm uses its running
        # statistics), so run it on slices; its wide temporaries then stay the same size
        # however large the cloud, instead of growing with it (cache- and page-friendly)
        out = fused.new_empty(n, self.out_channels)
        for start in range(0, n, _HEAD_CHUNK):
            sl = slice(start, min(start + _HEAD_CHUNK, n))
            out[sl] = self.head(fused[sl], context, layout.batch[sl])
        return out

    @property
    def out_channels(self) -> int:
        """Logits per point (``num_parts``)."""
        return self.classifier.out_features

    def point_features(self, pos: Tensor, layout: CloudLayout, x: Tensor | None = None) -> Tensor:
        """Fused per-point features ``(N, fuse_channels)`` (before the global pools)."""
        feat = self.point_embed(point_input(pos, x, self.in_channels))
        outputs = []
        for layer in self.attention:
            feat = layer(feat, layout=layout)
            outputs.append(feat)
        return self.fuse.forward_parts(outputs)

    def global_features(self, pooled_max: Tensor, pooled_mean: Tensor, category: Tensor) -> Tensor:
        """Per-cloud context ``(B, 2 * fuse + category_channels)``."""
        one_hot = F.one_hot(category, self.num_categories).to(pooled_max.dtype)
        return torch.cat([pooled_max, pooled_mean, self.category_embed(one_hot)], dim=-1)

    def head(self, fused: Tensor, context: Tensor, batch: Tensor) -> Tensor:
        """Per-point logits from fused point features and their cloud's context.

        The first layer acts on ``[fused, context[batch]]``; its context part is the same
        for every point of a cloud, so it is computed once per cloud and gathered
        (exact, and two thirds of that layer's arithmetic saved).
        """
        w_point, w_cloud, bias = self.head_weights()
        per_cloud = F.linear(context, w_cloud, bias)  # (B, hidden)
        h = F.linear(fused, w_point)
        # one cloud: broadcast its context row instead of gathering a copy per point
        h = h + (per_cloud if per_cloud.size(0) == 1 else per_cloud.index_select(0, batch))
        h = self.head1.norm(h)
        p = self.dropout.p
        if self.training and p > 0:
            # dropout commutes with the ReLU (a non-negative scaling of each entry), so it
            # runs first: the in-place ReLU, the dropout and the next layer then share one
            # tensor, and backward keeps a boolean mask instead of a float mask and a copy
            drop = torch.empty_like(h, dtype=torch.bool).bernoulli_(p)
            h = h.masked_fill(drop, 0.0).mul_(1.0 / (1.0 - p) if p < 1 else 0.0)
        return self.classifier(self.head2(self.head1.activation(h)))

    def head_weights(self) -> tuple[Tensor, Tensor, Tensor | None]:
        """The first head layer's linear map split by what it reads.

        Returns ``(point, context, bias)``: the weight's columns acting on the fused
        point features ``(hidden, fuse_channels)``, those acting on the cloud's context
        ``(hidden, 2 * fuse_channels + category_channels)``, and the bias ``(hidden,)``:
        ``head1.linear(torch.cat([fused, ctx], -1))`` equals
        ``F.linear(fused, point) + F.linear(ctx, context, bias)``.
        """
        lin = self.head1.linear
        w_point, w_cloud = lin.weight.split(
            [self.fuse.out_channels, lin.in_features - self.fuse.out_channels], dim=1
        )
        return w_point, w_cloud, lin.bias

    def check_category(self, category: Tensor, num_clouds: int = 1) -> Tensor:
        """``category`` as ``(num_clouds,)`` int64 indices, or :class:`InputError` when it
        is not a tensor of one integer index in ``[0, num_categories)`` per cloud."""
        if not isinstance(category, Tensor):
            raise InputError(f"category: expected a tensor, got {type(category).__name__}")
        category = category.reshape(-1)
        if category.numel() != num_clouds:
            raise InputError(
                f"category: expected one entry per cloud ({num_clouds}), got {category.numel()}"
            )
        if category.is_floating_point():
            raise InputError(f"category: expected integer indices, got {category.dtype}")
        if bool(((category < 0) | (category >= self.num_categories)).any()):
            raise InputError(
                f"category: indices must lie in [0, {self.num_categories}), got "
                f"{category.tolist()[:8]}"
            )
        return category.long()
