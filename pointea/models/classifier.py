"""The PCT shape classifier, with external (default) or self attention."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..errors import InputError
from ..nn import LBR, NeighborEmbedding, OffsetAttention
from ..nn.common import check_call_order, point_input
from ..nn.offset_attention import AttentionKind
from ..ops import CloudLayout, check_cloud, segment_max


def _mlp_head(
    in_channels: int,
    hidden: Sequence[int],
    out_channels: int,
    dropout: float,
    negative_slope: float,
) -> nn.Sequential:
    """Linear-BN-LeakyReLU-Dropout blocks then a final linear (PCT's classification head).

    As in the public implementation the first linear has no bias and the later ones do.
    """
    layers: list[nn.Module] = []
    prev = in_channels
    for i, width in enumerate(hidden):
        layers += [
            nn.Linear(prev, width, bias=i > 0),
            nn.BatchNorm1d(width),
            nn.LeakyReLU(negative_slope),
            nn.Dropout(dropout),
        ]
        prev = width
    layers.append(nn.Linear(prev, out_channels))
    return nn.Sequential(*layers)


class PCTClassifier(nn.Module):
    """PCT's classification network (https://arxiv.org/abs/2012.09688).

    Per-point LBRs (xyz -> ``embed_channels``), two neighbour-embedding stages (FPS +
    kNN + max; ``stage_channels`` / ``num_samples`` / ``k``), two LBRs, a stack of
    offset-attention layers whose outputs are concatenated with the last stage's
    features, a fusion LBR (LeakyReLU), a per-cloud max pool and an MLP head.

    With ``attention="self"`` and the defaults this is the published classifier
    (2,876,136 parameters); ``attention="external"`` swaps each attention layer for
    external attention with ``memory_units`` memory slots.

    Args:
        num_classes: output classes (40 for ModelNet40).
        in_channels: 3 (xyz) or 6 (xyz + normals, read from ``x``).
        attention: ``"external"`` or ``"self"``.
        memory_units: external attention's memory size ``S``.
        heads: external attention's heads (1 = EA, >1 = multi-head EA).
        tie_memories: external attention with ``M_v = M_k^T``.
        embed_channels: width of the per-point embedding.
        stage_channels: output width of each neighbour-embedding stage.
        num_samples: FPS centres per cloud in each stage.
        k: neighbours per centre.
        num_attention_layers: stacked offset-attention layers.
        fuse_channels: width after fusing the attention outputs.
        head_channels: hidden widths of the classification head.
        dropout: dropout probability in the head.
        negative_slope: LeakyReLU slope of the fusion layer and the head.

    Shapes:
        - input: ``model(x, pos, batch)``: ``x`` ``(N, 3)`` normals when
          ``in_channels == 6`` (else ``None``), ``pos`` ``(N, 3)``, ``batch`` ``(N,)`` or
          ``None``; optionally ``sampling``, the stages' FPS
          centres and kNN neighbours computed ahead (:mod:`pointea.nn.sampling_plan`,
          one ``(centres (M,), neighbours (M, k))`` per stage) and ``points_per_cloud``
          when every cloud has that many points (the layout from the host: with both, a
          forward pass reads nothing back from the device)
        - output: logits ``(B, num_classes)``
    """

    def __init__(
        self,
        num_classes: int = 40,
        in_channels: int = 3,
        attention: AttentionKind = "external",
        memory_units: int = 64,
        heads: int = 1,
        tie_memories: bool = False,
        embed_channels: int = 64,
        stage_channels: Sequence[int] = (128, 256),
        num_samples: Sequence[int] = (512, 256),
        k: int = 32,
        num_attention_layers: int = 4,
        fuse_channels: int = 1024,
        head_channels: Sequence[int] = (512, 256),
        dropout: float = 0.5,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if in_channels not in (3, 6):
            raise InputError(
                f"in_channels: expected 3 (xyz) or 6 (xyz + normals), got {in_channels}"
            )
        if len(stage_channels) != len(num_samples) or not stage_channels:
            raise InputError("stage_channels and num_samples must have the same, non-zero length")
        self.in_channels = in_channels
        self.point_embed = nn.Sequential(
            LBR(in_channels, embed_channels), LBR(embed_channels, embed_channels)
        )
        self.stages = nn.ModuleList()
        prev = embed_channels
        for width, samples in zip(stage_channels, num_samples, strict=True):
            self.stages.append(NeighborEmbedding(prev, width, samples, k))
            prev = width
        self.pre_attention = nn.Sequential(LBR(prev, prev), LBR(prev, prev))
        self.attention = nn.ModuleList(
            OffsetAttention(prev, attention, memory_units, heads, tie_memories)
            for _ in range(num_attention_layers)
        )
        fused_in = prev * (num_attention_layers + 1)
        self.fuse = LBR(fused_in, fuse_channels, negative_slope=negative_slope)
        self.head = _mlp_head(fuse_channels, head_channels, num_classes, dropout, negative_slope)

    def forward(
        self,
        x: Tensor | None = None,
        pos: Tensor | None = None,
        batch: Tensor | None = None,
        *,
        sampling: Sequence[tuple[Tensor, Tensor]] | None = None,
        points_per_cloud: int | None = None,
    ) -> Tensor:
        """Logits ``(B, num_classes)`` of PyG's ``(x, pos, batch)`` packing (``x``: the
        normals of a 6-channel model, else ``None``)."""
        pos = check_call_order(x, pos, batch)
        feat, layout = self.features(
            pos, batch, x, sampling=sampling, points_per_cloud=points_per_cloud
        )
        if layout.uniform is not None:
            pooled = feat.view(layout.num_clouds, layout.uniform, -1).amax(dim=1)
        else:
            pooled = segment_max(feat, layout.batch, layout.num_clouds)
        return self.head(pooled)

    def features(
        self,
        pos: Tensor,
        batch: Tensor | None = None,
        x: Tensor | None = None,
        *,
        sampling: Sequence[tuple[Tensor, Tensor]] | None = None,
        points_per_cloud: int | None = None,
    ) -> tuple[Tensor, CloudLayout]:
        """Fused per-centre features before pooling: ``(M, fuse_channels)`` and their layout."""
        normals = x if self.in_channels == 6 else None
        layout = check_cloud(pos, batch, normals, x_channels=3, uniform=points_per_cloud)
        feat = self.point_embed(point_input(pos, x, self.in_channels))  # (N, embed)
        return self.features_from_stage(feat, pos, layout, start=0, sampling=sampling)

    def features_from_stage(
        self,
        feat: Tensor,
        pos: Tensor,
        layout: CloudLayout,
        start: int,
        sampling: Sequence[tuple[Tensor, Tensor]] | None = None,
    ) -> tuple[Tensor, CloudLayout]:
        """Run the neighbour-embedding stages from ``start`` on, then attention and fusion
        (``sampling``: the plans of those stages, computed ahead)."""
        stages = self.stages[start:]
        if sampling is not None and len(sampling) != len(stages):
            raise InputError(f"sampling: {len(sampling)} stage plans for {len(stages)} stages")
        for i, stage in enumerate(stages):
            plan = None if sampling is None else sampling[i]
            feat, pos, layout = stage(feat, pos, layout=layout, plan=plan)  # (M, stage_channels[i])
        stage_out = feat
        feat = self.pre_attention(feat)
        outputs = []
        for layer in self.attention:
            feat = layer(feat, layout=layout)
            outputs.append(feat)
        return self.fuse.forward_parts([*outputs, stage_out]), layout
