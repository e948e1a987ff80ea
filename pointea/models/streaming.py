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
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError
from ..nn import ExternalAttention
from ..nn.common import fold_batchnorm, point_input
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


@torch.no_grad()
def segment_large(
    model: PCTSegmenter,
    pos: Tensor,
    category: int | Tensor,
    x: Tensor | None = None,
    chunk_size: int = 16_384,
    progress: bool = False,
    cache_bytes: int = 2**30,
) -> Tensor:
    """Per-point part logits of ONE cloud of any size, computed chunk by chunk.

    Args:
        model: an external-attention :class:`PCTSegmenter` in eval mode.
        pos: ``(N, 3)`` coordinates of one cloud.
        category: the object category index.
        x: ``(N, 3)`` normals when the model reads them.
        chunk_size: points processed at once (memory grows linearly with it).
        progress: show a progress bar over the passes.
        cache_bytes: memory for the first head layer's point term of the first points,
            kept from the pooling pass so that their fused features are not computed
            twice (``N * 512 * 4`` bytes covers every point in float32, half in bf16).

    Returns:
        ``(N, num_parts)`` logits (float32 for a float32 cloud, under autocast too),
        equal to ``model(pos, category)`` up to rounding.

    Under ``torch.autocast`` the per-point products run in the autocast dtype; the
    softmax normalisers, the pools and the logits are accumulated in float32.
    """
    _require_external(model, model.attention)
    check_cloud(pos, None, x if model.in_channels == 6 else None, x_channels=3)
    if chunk_size < 1:
        raise InputError(f"chunk_size: must be >= 1, got {chunk_size}")
    category = torch.as_tensor(category, device=pos.device).reshape(1)
    category = model._check_category(category, CloudLayout(pos.new_zeros(1).long(), 1, 1))
    device_type = pos.device.type
    dtype = (
        torch.get_autocast_dtype(device_type)
        if torch.is_autocast_enabled(device_type)
        else pos.dtype
    )
    # explicit dtypes from here on (the attention modules' own maps re-enter autocast)
    with torch.autocast(device_type, enabled=False):
        plan = _SegmentPlan(model, pos, x, dtype)
        return _segment_passes(plan, category, chunk_size, cache_bytes, progress)


def _segment_passes(
    plan: _SegmentPlan, category: Tensor, chunk_size: int, cache_bytes: int, progress: bool
) -> Tensor:
    model, pos = plan.model, plan.pos
    n = pos.size(0)
    lses: list[Tensor] = []
    layers = len(plan.layers)
    total = (layers + 2) * ((n + chunk_size - 1) // chunk_size)
    bar = _progress(total, progress)

    for depth in range(layers):  # 1. the normaliser of every attention layer
        lse = None
        for sl in _chunks(n, chunk_size):
            feat = plan.features(sl, lses, depth)
            part = torch.logsumexp(plan.logits(depth, feat).flatten(1).float(), 0, keepdim=True)
            lse = part if lse is None else torch.logaddexp(lse, part)
            bar.update(1)
        lses.append(lse)

    # rows whose first head product (context-free) is kept from pass 2 for pass 3, so
    # their fused features are not recomputed: as many as cache_bytes allows
    cached = min(n, cache_bytes // (plan.hidden * plan.itemsize))
    cache = pos.new_empty(cached, plan.hidden, dtype=plan.dtype)
    pooled_max, pooled_sum = None, None  # 2. global max and mean of the fused features
    for sl in _chunks(n, chunk_size):
        f = plan.fused(sl, lses)
        m, s = f.amax(dim=0, keepdim=True).float(), f.sum(dim=0, keepdim=True, dtype=torch.float32)
        pooled_max = m if pooled_max is None else torch.maximum(pooled_max, m)
        pooled_sum = s if pooled_sum is None else pooled_sum + s
        keep = min(sl.stop, cached) - sl.start
        if keep > 0:
            torch.mm(f[:keep], plan.point_weight.t(), out=cache[sl.start : sl.start + keep])
        bar.update(1)
    context = model.global_features(
        pooled_max.to(pos.dtype), (pooled_sum / n).to(pos.dtype), category
    )
    plan.set_context(context)

    logits = pos.new_empty(n, model.classifier.out_features)  # 3. per-point logits
    for sl in _chunks(cached, chunk_size):
        logits[sl] = plan.head_rest(cache[sl])
        bar.update(1)
    for sl in _chunks(n - cached, chunk_size):
        sl = slice(sl.start + cached, sl.stop + cached)
        logits[sl] = plan.head(plan.fused(sl, lses))
        bar.update(1)
    bar.close()
    return logits


class _SegmentPlan:
    """The eval-mode segmenter as per-chunk products with BatchNorms folded in.

    Every LBR becomes one ``addmm`` with its batch norm folded into the weight and bias
    (:meth:`~pointea.nn.LBR.folded`) and an in-place activation; the four attention
    outputs are written side by side into one ``(chunk, 4 * C)`` buffer, so the fusion
    layer is one wide product instead of four accumulations into its output; the
    softmax over the cloud's points uses the known log-normaliser by broadcasting. The
    weights are cast once to the compute dtype (the autocast dtype when autocast is on).
    """

    def __init__(
        self, model: PCTSegmenter, pos: Tensor, x: Tensor | None, dtype: torch.dtype
    ) -> None:
        self.model, self.pos, self.x = model, pos, x
        self.device_type, self.dtype = pos.device.type, dtype
        self.embed = [(_cast(lbr.folded(), self.dtype), lbr[2]) for lbr in model.point_embed]
        self.layers = []
        for layer in model.attention:
            attn = layer.attention
            value, value_bias = attn.value_map()
            lin = layer.transform.linear
            bias = lin.bias if value_bias is None else lin.bias - lin.weight @ value_bias
            folded = fold_batchnorm(lin.weight, bias, layer.transform.norm)
            # F_att = R V^T + b is linear: the transform reads R through (W V), folded too
            read, _ = fold_batchnorm(lin.weight @ value, None, layer.transform.norm)
            self.layers.append((attn, _cast(folded, self.dtype), -read.t().to(self.dtype)))
        self.fuse = (_cast(model.fuse.folded(), self.dtype), model.fuse[2])
        self.width = sum(attn.channels for attn, _, _ in self.layers)
        self.head1 = model.head1
        lin = model.head1.linear
        fused_width = model.fuse.linear.out_features
        point = lin.weight[:, :fused_width]  # the rest acts on the cloud's context
        self.point_weight = fold_batchnorm(point, None, model.head1.norm)[0].to(dtype)
        self.hidden = lin.out_features
        self.itemsize = torch.empty(0, dtype=dtype).element_size()
        self.point_bias: Tensor | None = None
        self.head2 = (_cast(model.head2.folded(), self.dtype), model.head2[2])
        self.classifier = (model.classifier.weight.to(self.dtype), model.classifier.bias)

    def _amp(self):
        # the attention modules' own maps (their weights stay float32) under autocast
        return torch.autocast(
            self.device_type,
            dtype=self.dtype,
            enabled=self.dtype in (torch.bfloat16, torch.float16),
        )

    def logits(self, depth: int, feat: Tensor) -> Tensor:
        with self._amp():
            return self.layers[depth][0].logits(feat)

    def _input(self, sl: slice) -> Tensor:
        inp = point_input(
            self.pos[sl], None if self.x is None else self.x[sl], self.model.in_channels
        )
        feat = inp.to(self.dtype)
        for (weight, bias), act in self.embed:
            feat = act(torch.addmm(bias, feat, weight.t()))
        return feat

    def _attend(self, depth: int, feat: Tensor, lse: Tensor, out: Tensor | None = None) -> Tensor:
        attn, (weight, bias), read = self.layers[depth]
        logits = self.logits(depth, feat)
        # the double normalisation with the cloud's known normaliser, in place
        weights = logits.float().sub_(lse.view(1, *logits.shape[1:])).exp_()
        weights.div_(weights.sum(dim=-1, keepdim=True).add_(attn.eps))
        with self._amp():
            feats = attn.read_features(weights.to(self.dtype))
        pre = torch.addmm(bias, feat, weight.t()).addmm_(feats.to(self.dtype), read)
        pre = torch.relu_(pre)
        return torch.add(feat, pre, out=out) if out is not None else pre.add_(feat)

    def features(self, sl: slice, lses: list[Tensor], depth: int) -> Tensor:
        """The input of attention layer ``depth`` on the chunk ``sl``."""
        feat = self._input(sl)
        for i in range(depth):
            feat = self._attend(i, feat, lses[i])
        return feat

    def fused(self, sl: slice, lses: list[Tensor]) -> Tensor:
        """The fused features ``(chunk, fuse_channels)`` of the chunk ``sl``."""
        feat = self._input(sl)
        parts = feat.new_empty(feat.size(0), self.width)
        start = 0
        for i, (attn, _, _) in enumerate(self.layers):
            out = parts[:, start : start + attn.channels]
            self._attend(i, feat, lses[i], out=out)
            feat, start = out, start + attn.channels
        (weight, bias), act = self.fuse
        return act(torch.addmm(bias, parts, weight.t()))

    def set_context(self, context: Tensor) -> None:
        """Fold the cloud's context term of the first head layer into its bias."""
        lin = self.head1.linear
        w_cloud = lin.weight[:, lin.in_features - context.size(-1) :]
        bias = F.linear(context, w_cloud, lin.bias).squeeze(0)
        self.point_bias = fold_batchnorm(w_cloud, bias, self.head1.norm)[1].to(self.dtype)

    def head(self, fused: Tensor) -> Tensor:
        """Per-point logits from fused features (after :meth:`set_context`)."""
        return self.head_rest(torch.mm(fused, self.point_weight.t()))

    def head_rest(self, pre: Tensor) -> Tensor:
        """Per-point logits from the first head layer's point term ``fused @ W^T``
        (overwritten)."""
        h = self.head1[2](pre.add_(self.point_bias))
        (weight, bias), act = self.head2
        h = act(torch.addmm(bias, h, weight.t()))
        weight, bias = self.classifier
        return torch.addmm(bias.to(self.dtype), h, weight.t())


def _cast(pair: tuple[Tensor, Tensor], dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    return pair[0].to(dtype), pair[1].to(dtype)


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
