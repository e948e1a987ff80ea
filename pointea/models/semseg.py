"""Semantic segmentation of whole rooms: the PCT segmenter on xyz + rgb + room coordinates.

The network is :class:`~pointea.models.segmenter.PCTSegmenter` (per-point embedding, four
offset-attention layers, fused features, max + mean pooled context, per-point head) with
a 9-channel input and no object category. The input follows PointNet's S3DIS setup
(Qi et al., CVPR 2017, section 5.1 / supplementary: "XYZ, RGB and normalized location as
to the room (from 0 to 1)"), which DGCNN (Wang et al., 2019) kept:

* ``pos``: the room's coordinates, centred on the room's x-y centre, z above its floor;
* ``x[:, 0:3]``: colour in [0, 1];
* ``x[:, 3:6]``: the location normalised to the room's bounding box, in [0, 1].

(:func:`~pointea.scene_features.room_features` builds them.) With external attention the
normaliser of the softmax over points is one number per memory unit, so a whole room of
any size is segmented exactly, chunk by chunk (:func:`room_logits`, through
:func:`~pointea.models.streaming.segment_large`): no blocks, no voting. Users' scenes go
through :func:`pointea.inference.scenes.segment_scene`, which validates them and calls
:func:`room_logits`; the literature's block protocol is
:func:`pointea.inference.blocks.block_vote_logits`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..nn import LBR
from ..nn.common import check_call_order
from ..nn.offset_attention import AttentionKind
from ..ops import check_cloud
from ..scene_features import room_features
from .chunks import check_chunk_size
from .segmenter import PCTSegmenter
from .streaming import is_streamable, segment_large

__all__ = ["PCTSemSeg", "room_logits"]


class PCTSemSeg(PCTSegmenter):
    """PCT semantic segmenter for scenes (https://arxiv.org/abs/2012.09688).

    :class:`PCTSegmenter` with ``in_channels = 3 + x channels`` (9 for xyz + rgb + room
    location) and a single category, whose embedding is one learned context vector
    (:class:`SceneContext`) shared by all rooms; every other layer, and the exact
    streaming path, is the part segmenter's.

    Args:
        num_classes: output classes per point (13 for S3DIS).
        in_channels: ``3 + x.size(1)`` (9 for the S3DIS features).
        attention, memory_units, heads, tie_memories, embed_channels,
        num_attention_layers, fuse_channels, category_channels, head_channels, dropout,
        negative_slope: as for :class:`PCTSegmenter`.

    Shapes:
        - input: ``pos`` ``(N, 3)``, ``x`` ``(N, in_channels - 3)``, ``batch`` ``(N,)`` or
          ``None``
        - output: logits ``(N, num_classes)``
    """

    def __init__(
        self,
        num_classes: int = 13,
        in_channels: int = 9,
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
        if in_channels < 4:
            raise InputError(
                f"in_channels: expected 3 + feature channels (>= 4), got {in_channels}"
            )
        super().__init__(
            num_parts=num_classes,
            num_categories=1,
            in_channels=6,
            attention=attention,
            memory_units=memory_units,
            heads=heads,
            tie_memories=tie_memories,
            embed_channels=embed_channels,
            num_attention_layers=num_attention_layers,
            fuse_channels=fuse_channels,
            category_channels=category_channels,
            head_channels=head_channels,
            dropout=dropout,
            negative_slope=negative_slope,
        )
        # the parent builds a 6-channel embedding; widen its first linear map
        self.point_embed[0] = LBR(in_channels, embed_channels)
        # one category: a one-hot through Linear + BatchNorm would be a constant whose
        # weights get no gradient; a learned context vector is what it amounts to
        self.category_embed = SceneContext(category_channels)
        self.in_channels = in_channels
        self.num_classes = num_classes

    def forward(  # type: ignore[override]
        self,
        x: Tensor | None = None,
        pos: Tensor | None = None,
        batch: Tensor | None = None,
    ) -> Tensor:
        """Class logits ``(N, num_classes)`` of PyG's ``(x, pos, batch)`` packing, ``x`` the
        room features (:func:`pointea.scene_features.room_features`)."""
        pos = check_call_order(x, pos, batch)
        if x is None:
            raise InputError("x: a scene model reads per-point room features (colours, location)")
        layout = check_cloud(pos, batch, x, x_channels=self.in_channels - 3)
        category = pos.new_zeros(layout.num_clouds, dtype=torch.long)
        return super().forward(x, pos, batch, category=category)


class SceneContext(nn.Module):
    """A learned vector appended to every room's pooled features: ``(B, 1) -> (B, C)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, one_hot: Tensor) -> Tensor:
        return self.weight.to(one_hot.dtype).expand(one_hot.size(0), -1)


@torch.no_grad()
def room_logits(
    model: PCTSemSeg,
    xyz: Tensor,
    rgb: Tensor,
    chunk_size: int = 65_536,
    progress: bool = False,
) -> Tensor:
    """Logits ``(N, num_classes)`` of every point of one room in one exact pass.

    The model-level pass on tensors already in the training convention (z up, metres,
    colours ``uint8`` or in [0, 1]; the room frame is built here by
    :func:`~pointea.scene_features.room_features`): the engine's whole-room evaluation
    calls it, and :func:`pointea.inference.scenes.segment_scene` calls it after
    validating a user's scene. A streamable model
    (:func:`~pointea.models.streaming.is_streamable`: external attention) runs in chunks
    of ``chunk_size`` points (memory ``O(chunk_size)``, at least
    :data:`~pointea.models.chunks.MIN_CHUNK`; equal to ``model(x, pos)`` up to
    rounding). Self-attention runs the plain forward: its ``N x N`` map must fit.
    """
    if model.training:
        raise InputError("model: room inference needs eval mode (call model.eval())")
    check_chunk_size(chunk_size)
    device = next(model.parameters()).device
    pos, x = room_features(xyz.to(device), rgb.to(device))
    if is_streamable(model):
        return segment_large(model, pos, 0, x=x, chunk_size=chunk_size, progress=progress)
    return model(x, pos)
