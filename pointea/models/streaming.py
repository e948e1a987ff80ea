"""Exact inference on very large clouds (a million points and more) in bounded memory.

External attention's only non-local step is the softmax over the points of a cloud, and
that needs just one number per memory unit: the log-sum-exp of the logits over all
points. Everything else in the segmenter is per point (in eval mode BatchNorm is a fixed
affine map) or a max / mean over the cloud. So a cloud can be processed in chunks:

1. for each attention layer ``l``: one pass over the chunks computes the layer's input
   (re-running layers ``< l`` with their already known normalisers) and accumulates its
   log-sum-exp with ``logaddexp``;
2. one pass accumulates the running max and sum of the fused features;
3. one pass computes the per-point logits with the cloud's global features.

Memory is ``O(chunk_size)`` plus the output; the result equals the unchunked forward up
to floating-point summation order. Self-attention cannot do this: its ``N x N`` map for
``N = 10^6`` points is ``4 * 10^12`` bytes (4 TB) in float32.

The classifier's first neighbour-embedding stage already touches only the FPS centres'
neighbourhoods, so :func:`classify_large` embeds just those points and is exact too.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from ..errors import InputError
from ..nn import ExternalAttention
from ..nn.common import point_input
from ..ops import CloudLayout, check_cloud, farthest_point_sample, knn_groups
from .classifier import PCTClassifier
from .segmenter import PCTSegmenter

__all__ = ["segment_large", "classify_large"]


def _chunks(n: int, chunk_size: int) -> Iterator[slice]:
    for start in range(0, n, chunk_size):
        yield slice(start, min(start + chunk_size, n))


def _require_external(model: torch.nn.Module, layers) -> None:
    if model.training:
        raise InputError("model: streaming inference needs eval mode (call model.eval())")
    for layer in layers:
        if not isinstance(layer.attention, ExternalAttention):
            raise InputError(
                "model: chunked inference needs external attention; self-attention needs the "
                "whole N x N attention map (4 TB in float32 for a million points)"
            )


def _offset_layer(layer, feat: Tensor, lse: Tensor, zeros: Tensor) -> Tensor:
    return layer(feat, layout=CloudLayout(zeros, 1, None), log_normalizer=lse)


@torch.no_grad()
def segment_large(
    model: PCTSegmenter,
    pos: Tensor,
    category: int | Tensor,
    x: Tensor | None = None,
    chunk_size: int = 65_536,
    progress: bool = False,
) -> Tensor:
    """Per-point part logits of ONE cloud of any size, computed chunk by chunk.

    Args:
        model: an external-attention :class:`PCTSegmenter` in eval mode.
        pos: ``(N, 3)`` coordinates of one cloud.
        category: the object category index.
        x: ``(N, 3)`` normals when the model reads them.
        chunk_size: points processed at once (memory grows linearly with it).
        progress: show a progress bar over the passes.

    Returns:
        ``(N, num_parts)`` logits, equal to ``model(pos, category)`` up to rounding.
    """
    _require_external(model, model.attention)
    check_cloud(pos, None, x if model.in_channels == 6 else None, x_channels=3)
    if chunk_size < 1:
        raise InputError(f"chunk_size: must be >= 1, got {chunk_size}")
    category = torch.as_tensor(category, device=pos.device).reshape(1)
    category = model._check_category(category, CloudLayout(pos.new_zeros(1).long(), 1, 1))
    n = pos.size(0)
    layers = list(model.attention)
    lses: list[Tensor] = []
    total = (len(layers) + 2) * ((n + chunk_size - 1) // chunk_size)
    bar = _progress(total, progress)

    def embed(sl: slice) -> Tensor:
        return model.point_embed(
            point_input(pos[sl], None if x is None else x[sl], model.in_channels)
        )

    def fused(sl: slice) -> Tensor:
        feat = embed(sl)
        zeros = feat.new_zeros(feat.size(0), dtype=torch.long)
        outs = []
        for layer, lse in zip(layers, lses, strict=True):
            feat = _offset_layer(layer, feat, lse, zeros)
            outs.append(feat)
        return model.fuse.forward_parts(outs)

    for depth, layer in enumerate(layers):  # 1. the normaliser of every attention layer
        lse = None
        for sl in _chunks(n, chunk_size):
            feat = embed(sl)
            zeros = feat.new_zeros(feat.size(0), dtype=torch.long)
            for prev, prev_lse in zip(layers[:depth], lses, strict=True):
                feat = _offset_layer(prev, feat, prev_lse, zeros)
            part = torch.logsumexp(layer.attention.logits(feat).flatten(1), dim=0, keepdim=True)
            lse = part if lse is None else torch.logaddexp(lse, part)
            bar.update(1)
        lses.append(lse)

    pooled_max, pooled_sum = None, None  # 2. global max and mean of the fused features
    for sl in _chunks(n, chunk_size):
        f = fused(sl)
        m, s = f.amax(dim=0, keepdim=True), f.sum(dim=0, keepdim=True)
        pooled_max = m if pooled_max is None else torch.maximum(pooled_max, m)
        pooled_sum = s if pooled_sum is None else pooled_sum + s
        bar.update(1)
    context = model.global_features(pooled_max, pooled_sum / n, category)

    logits = pos.new_empty(n, model.classifier.out_features)  # 3. per-point logits
    for sl in _chunks(n, chunk_size):
        f = fused(sl)
        logits[sl] = model.head(f, context, f.new_zeros(f.size(0), dtype=torch.long))
        bar.update(1)
    bar.close()
    return logits


@torch.no_grad()
def classify_large(model: PCTClassifier, pos: Tensor, x: Tensor | None = None) -> Tensor:
    """Logits ``(1, num_classes)`` of ONE cloud of any size, embedding only what is used.

    The first stage picks its centres by FPS over all points and groups their ``k``
    nearest points; only those points (at most ``num_samples * k``) go through the
    per-point embedding. Equal to ``model(pos)`` in eval mode.
    """
    if model.training:
        raise InputError("model: needs eval mode (call model.eval())")
    layout = check_cloud(pos, None, x if model.in_channels == 6 else None, x_channels=3)
    first = model.stages[0]
    centre, centre_layout = farthest_point_sample(pos, layout, first.num_samples)
    edge_centre, edge_point, k_uniform = knn_groups(
        pos, layout, pos[centre], centre_layout, first.k
    )
    needed = torch.unique(torch.cat([centre, edge_point]))
    remap = torch.full((pos.size(0),), -1, dtype=torch.long, device=pos.device)
    remap[needed] = torch.arange(needed.numel(), device=pos.device)
    feat = model.point_embed(
        point_input(pos[needed], None if x is None else x[needed], model.in_channels)
    )
    feat = first.aggregate(feat, remap[centre], edge_centre, remap[edge_point], k_uniform)
    feat, layout = model.features_from_stage(feat, pos[centre], centre_layout, start=1)
    return model.head(feat.amax(dim=0, keepdim=True))


def _progress(total: int, enabled: bool):
    if enabled:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc="chunks", unit="chunk")

    class _Null:
        def update(self, _: int) -> None: ...

        def close(self) -> None: ...

    return _Null()
