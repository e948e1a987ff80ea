"""Exact inference on very large clouds (a million points and more) in bounded memory.

External attention's only non-local step is the softmax over the points of a cloud, and
that needs just one number per memory unit: the log-sum-exp of the logits over all
points. Everything else in the segmenter is per point (in eval mode BatchNorm is a fixed
affine map) or a max / mean over the cloud. So a cloud can be processed in chunks:

1. for each attention layer ``l``: one pass over the chunks computes the layer's input
   (re-running layers ``< l`` with their already known normalisers, or reading it from
   a spill file) and accumulates its log-sum-exp with ``logaddexp``;
2. one pass accumulates the running max and sum of the fused features, and keeps the
   first head layer's point term for as many points as the cache allows (in memory,
   the rest optionally in a spill file);
3. one pass computes the per-point logits with the cloud's global features.

Memory is ``O(chunk_size)`` plus the cache and the output; the result equals the
unchunked forward up to floating-point summation order. Self-attention cannot do this:
its ``N x N`` map for ``N = 10^6`` points is ``4 * 10^12`` bytes (4 TB) in float32.

The classifier's first neighbour-embedding stage already touches only the FPS centres'
neighbourhoods, so :func:`classify_large` embeds just those points and is exact too.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError
from ..nn.common import point_input
from ..ops import check_cloud, farthest_point_sample, knn_groups
from .chunks import DEFAULT_CHUNK
from .classifier import PCTClassifier
from .segmenter import PCTSegmenter
from .spill import SpillFile, spill_space

__all__ = [
    "is_streamable",
    "segment_large",
    "classify_large",
]

def _chunks(n: int, chunk_size: int) -> Iterator[slice]:
    for start in range(0, n, chunk_size):
        yield slice(start, min(start + chunk_size, n))


def is_streamable(model: torch.nn.Module) -> bool:
    """Whether :func:`segment_large` computes ``model``'s logits chunk by chunk: a
    :class:`PCTSegmenter` (part or scene segmenter) whose attention layers all use
    external attention. Self-attention needs the whole ``N x N`` attention map at once.
    (:func:`classify_large` takes every :class:`PCTClassifier`: its attention runs on
    the sampled centres only.)"""
    return isinstance(model, PCTSegmenter) and all(layer.is_external for layer in model.attention)


def _require_streamable(model: torch.nn.Module) -> None:
    if model.training:
        raise InputError("model: streaming inference needs eval mode (call model.eval())")
    if not is_streamable(model):
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
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool = False,
    cache_bytes: int = 2**30,
    spill: bool = False,
    spill_dir: str | os.PathLike | None = None,
    stats: dict | None = None,
    head_float32: bool = False,
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
        spill: write what does not fit ``cache_bytes`` to temporary files instead of
            recomputing it: the head term of the uncached points (``512 * 4`` bytes per
            point, written in the pooling pass, read back in the logits pass; saves
            their embedding, attention layers and fusion, ~1.3 MFLOP per point) and,
            when the cloud spans several chunks, the outputs of all attention layers
            but the last (``128 * 4`` bytes per point and layer; each normaliser pass
            then runs one layer instead of re-running those before it, and the pooling
            pass reads them). Plain file writes and ``readinto`` a reused buffer, no
            memory map: the files are not part of the process's memory, though the OS
            may keep them in its (reclaimable) page cache. It pays where the disk
            writes faster than about 0.3 GB/s; on the 2-core benchmark VM it writes
            0.2 GB/s and recomputing is faster (docs/PERFORMANCE.md), so the default
            is ``False``. When ``spill_dir`` has less free space than the files need,
            the call warns and recomputes. Each file's name is removed right after it
            is created (only the open handle keeps it), so no file outlives the call or
            the process, even one killed by SIGKILL.
        spill_dir: the folder for those files (default: the system's temporary folder,
            ``tempfile.gettempdir()``, i.e. ``$TMPDIR`` or ``/tmp``).
        stats: a dict to fill with what the call did: ``"seconds"`` per pass
            (``"normalisers"``, ``"pools"``, ``"logits"``) and the rows whose head term
            was ``"cached"``, ``"spilled"`` or ``"recomputed"``, and whether the layer
            outputs were spilled (``"layers_spilled"``). When it holds a running
            ``torch.utils.flop_counter.FlopCounterMode`` under ``"flop_counter"``, the
            FLOPs per pass are added under ``"flops"``.

        head_float32: under autocast, run the head's last two layers (the second
            hidden layer and the classifier, ~11 % of the multiply-adds of ``pct_seg``)
            in float32. On a trained ``pct_seg_tiny`` and dense airplanes it raised the
            bf16 labels' agreement with float32 from 99.26-99.30 % to 99.81-99.86 %
            (docs/PERFORMANCE.md). No effect without autocast.

    Returns:
        ``(N, num_parts)`` logits (float32 for a float32 cloud, under autocast too),
        equal to ``model(x, pos, category=category)`` up to rounding.

    Under ``torch.autocast`` the per-point products run in the autocast dtype; the
    softmax normalisers, the pools and the logits are accumulated in float32.
    """
    _require_streamable(model)
    check_cloud(pos, None, x if model.in_channels == 6 else None, x_channels=3)
    if chunk_size < 1:
        raise InputError(f"chunk_size: must be >= 1, got {chunk_size}")
    if cache_bytes < 0:
        raise InputError(f"cache_bytes: must be >= 0, got {cache_bytes}")
    category = torch.as_tensor(category, device=pos.device).reshape(1)
    category = model.check_category(category, num_clouds=1)
    device_type = pos.device.type
    dtype = (
        torch.get_autocast_dtype(device_type)
        if torch.is_autocast_enabled(device_type)
        else pos.dtype
    )
    # explicit dtypes from here on (the attention modules' own maps re-enter autocast)
    with torch.autocast(device_type, enabled=False):
        plan = _SegmentPlan(model, pos, x, dtype, torch.float32 if head_float32 else dtype)
        return _segment_passes(
            plan, category, chunk_size, cache_bytes, progress, spill, spill_dir, stats
        )


def _segment_passes(
    plan: _SegmentPlan,
    category: Tensor,
    chunk_size: int,
    cache_bytes: int,
    progress: bool,
    spill: bool = False,
    spill_dir: str | os.PathLike | None = None,
    stats: dict | None = None,
) -> Tensor:
    model, pos = plan.model, plan.pos
    n = pos.size(0)
    layers = len(plan.layers)
    bar = _progress((layers + 2) * ((n + chunk_size - 1) // chunk_size), progress)
    mark = _PassClock(stats, pos.device)
    # rows whose first head product (context-free) is kept from pass 2 for pass 3, so
    # their fused features are not recomputed: as many as cache_bytes allows in memory,
    # the rest in a spill file (or recomputed)
    row_bytes = plan.hidden * plan.itemsize
    cached = min(n, cache_bytes // row_bytes)
    spill_head = spill and n > cached
    # the attention layers' outputs, spilled by the normaliser passes for the next
    # layer's pass and the pooling pass (else every pass re-runs the layers before it)
    spill_layers = spill and layers > 1 and n > chunk_size
    need = spill_head * (n - cached) * row_bytes
    need += spill_layers * (layers - 1) * n * plan.channels * plan.itemsize
    if need and spill_space(spill_dir) < need:
        warnings.warn(
            f"spill_dir: {spill_dir or tempfile.gettempdir()!r} has less than the "
            f"{need / 2**30:.2f} GiB the spill files need; recomputing instead",
            stacklevel=3,
        )
        spill_head = spill_layers = False
    rows = min(chunk_size, n)

    with ExitStack() as stack:

        def spill_file(width: int) -> SpillFile:
            return stack.enter_context(SpillFile(spill_dir, (width,), plan.dtype, rows))

        outputs = [spill_file(plan.channels) for _ in range(layers - 1)] if spill_layers else []
        lses = _normalisers(plan, n, chunk_size, outputs, bar)
        mark("normalisers")

        cache = pos.new_empty(cached, plan.hidden, dtype=plan.dtype)
        store = spill_file(plan.hidden) if spill_head else None
        buf = pos.new_empty(rows, plan.hidden, dtype=plan.dtype) if spill_head else None
        pooled_max, pooled_sum = None, None  # 2. global max and mean of the fused features
        for file in outputs:
            file.rewind()
        for sl in _chunks(n, chunk_size):
            f = plan.fused(sl, lses, outputs)
            m = f.amax(dim=0, keepdim=True).float()
            s = f.sum(dim=0, keepdim=True, dtype=torch.float32)
            pooled_max = m if pooled_max is None else torch.maximum(pooled_max, m)
            pooled_sum = s if pooled_sum is None else pooled_sum + s
            keep = max(0, min(sl.stop, cached) - sl.start)
            if keep > 0:
                torch.mm(f[:keep], plan.point_weight.t(), out=cache[sl.start : sl.start + keep])
            if store is not None and keep < f.size(0):
                out = buf[: f.size(0) - keep]
                store.write(torch.mm(f[keep:], plan.point_weight.t(), out=out))
            bar.update(1)
        context = model.global_features(
            pooled_max.to(pos.dtype), (pooled_sum / n).to(pos.dtype), category
        )
        plan.set_context(context)
        mark("pools")

        logits = pos.new_empty(n, model.out_channels)  # 3. per-point logits
        for sl in _chunks(cached, chunk_size):
            plan.head_rest(cache[sl], out=logits[sl])
            bar.update(1)
        if store is not None:
            store.rewind()
        for sl in _chunks(n - cached, chunk_size):
            sl = slice(sl.start + cached, sl.stop + cached)
            if store is not None:
                plan.head_rest(store.read_into(buf[: sl.stop - sl.start]), out=logits[sl])
            else:
                plan.head(plan.fused(sl, lses), out=logits[sl])
            bar.update(1)
        mark("logits")
        spilled = 0 if store is None else store.rows_written
    bar.close()
    if stats is not None:
        stats.update(cached=cached, spilled=spilled, recomputed=n - cached - spilled)
        stats.update(layers_spilled=bool(outputs))
    return logits


def _normalisers(
    plan: _SegmentPlan, n: int, chunk_size: int, outputs: list[SpillFile], bar
) -> list[Tensor]:
    """Pass 1: the per-cloud log-normaliser of every attention layer, one pass per layer.

    With ``outputs`` (one spill file per layer but the last), the pass of layer ``l``
    writes its input (the output of layer ``l - 1``) to ``outputs[l - 1]``, and the next
    pass reads it back instead of re-running the layers before it.
    """
    lses: list[Tensor] = []
    buf = None
    for depth in range(len(plan.layers)):
        lse = None
        source = outputs[depth - 2] if outputs and depth >= 2 else None
        target = outputs[depth - 1] if outputs and depth >= 1 else None
        if source is not None:
            source.rewind()
            buf = plan.pos.new_empty(min(chunk_size, n), plan.channels, dtype=plan.dtype)
        for sl in _chunks(n, chunk_size):
            if source is None:
                feat = plan.features(sl, lses, depth)
            else:
                prev = source.read_into(buf[: sl.stop - sl.start])
                feat = plan.attend(depth - 1, prev, lses[depth - 1])
            if target is not None:
                target.write(feat)
            part = torch.logsumexp(plan.logits(depth, feat).flatten(1).float(), 0, keepdim=True)
            lse = part if lse is None else torch.logaddexp(lse, part)
            bar.update(1)
        lses.append(lse)
    return lses


class _PassClock:
    """Seconds (and FLOPs, under a flop counter) per pass into a ``stats`` dict."""

    def __init__(self, stats: dict | None, device: torch.device) -> None:
        self.stats, self.device = stats, device
        if stats is not None:
            stats.setdefault("seconds", {})
            self.counter = stats.get("flop_counter")
            if self.counter is not None:
                stats.setdefault("flops", {})
            self.flops = self._flops()
            self.time = self._now()

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _flops(self) -> int:
        return 0 if self.counter is None else self.counter.get_total_flops()

    def __call__(self, name: str) -> None:
        if self.stats is None:
            return
        now, flops = self._now(), self._flops()
        self.stats["seconds"][name] = now - self.time
        if self.counter is not None:
            self.stats["flops"][name] = flops - self.flops
        self.time, self.flops = now, flops


class _SegmentPlan:
    """The eval-mode segmenter as per-chunk products with BatchNorms folded in.

    Every LBR becomes one ``addmm`` with its batch norm folded into the weight and bias
    (:meth:`~pointea.nn.LBR.folded`) and an in-place activation; the four attention
    outputs are written side by side into one ``(chunk, 4 * C)`` buffer, so the fusion
    layer is one wide product instead of four accumulations into its output; the
    softmax over the cloud's points uses the known log-normaliser by broadcasting. The
    weights are cast once to the compute dtype (the autocast dtype when autocast is on).

    It reads the model only through its public stages (see :class:`PCTSegmenter`):
    :meth:`~pointea.nn.LBR.folded` / :attr:`~pointea.nn.LBR.activation` of each LBR,
    :meth:`~pointea.nn.OffsetAttention.folded` of each attention layer,
    :meth:`PCTSegmenter.head_weights` and :meth:`PCTSegmenter.global_features`.
    """

    def __init__(
        self,
        model: PCTSegmenter,
        pos: Tensor,
        x: Tensor | None,
        dtype: torch.dtype,
        tail_dtype: torch.dtype | None = None,
    ) -> None:
        self.model, self.pos, self.x = model, pos, x
        self.device_type, self.dtype = pos.device.type, dtype
        self.tail_dtype = tail_dtype or dtype  # of the head's last two layers
        self.embed = [
            (_cast(lbr.folded(), self.dtype), lbr.activation) for lbr in model.point_embed
        ]
        self.layers = []
        for layer in model.attention:
            # F_att = R V^T + b is linear: the transform reads R through a folded map too
            weight, bias, read = layer.folded()
            folded = _cast((weight, bias), dtype)
            self.layers.append((layer.attention, folded, -read.t().to(dtype), layer.activation))
        self.fuse = (_cast(model.fuse.folded(), self.dtype), model.fuse.activation)
        self.width = sum(attn.channels for attn, *_ in self.layers)
        self.channels = model.attention[0].channels  # every layer's width
        self.head1 = model.head1
        point, self.context_weight, self.head_bias = model.head_weights()
        self.point_weight = model.head1.fold(point, None)[0].to(dtype)
        self.hidden = model.head1.out_channels
        self.itemsize = torch.empty(0, dtype=dtype).element_size()
        self.point_bias: Tensor | None = None
        self._buffer: Tensor | None = None
        self.head2 = (_cast(model.head2.folded(), self.tail_dtype), model.head2.activation)
        self.classifier = (
            model.classifier.weight.to(self.tail_dtype),
            model.classifier.bias.to(self.tail_dtype),
        )

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

    def attend(self, depth: int, feat: Tensor, lse: Tensor, out: Tensor | None = None) -> Tensor:
        """The output of attention layer ``depth`` for its input ``feat`` (into ``out``)."""
        attn, (weight, bias), read, act = self.layers[depth]
        logits = self.logits(depth, feat)
        # the double normalisation with the cloud's known normaliser, in place
        weights = logits.float().sub_(lse.view(1, *logits.shape[1:])).exp_()
        weights.div_(weights.sum(dim=-1, keepdim=True).add_(attn.eps))
        with self._amp():
            feats = attn.read_features(weights.to(self.dtype))
        pre = torch.addmm(bias, feat, weight.t()).addmm_(feats.to(self.dtype), read)
        pre = act(pre)
        return torch.add(feat, pre, out=out) if out is not None else pre.add_(feat)

    def features(self, sl: slice, lses: list[Tensor], depth: int) -> Tensor:
        """The input of attention layer ``depth`` on the chunk ``sl``."""
        feat = self._input(sl)
        for i in range(depth):
            feat = self.attend(i, feat, lses[i])
        return feat

    def fused(
        self, sl: slice, lses: list[Tensor], outputs: list[SpillFile] | None = None
    ) -> Tensor:
        """The fused features ``(chunk, fuse_channels)`` of the chunk ``sl``.

        With ``outputs`` (spill files of the outputs of every attention layer but the
        last, positioned at the chunk's rows) those are read, not recomputed.
        """
        parts = self.pos.new_empty(sl.stop - sl.start, self.width, dtype=self.dtype)
        widths = [attn.channels for attn, *_ in self.layers]
        blocks = parts.split(widths, dim=1)
        if outputs:
            for block, file in zip(blocks, outputs, strict=False):
                block.copy_(file.read_into(self._read_buffer(block.size(0))))
            start, feat = len(outputs), blocks[len(outputs) - 1]
        else:
            start, feat = 0, self._input(sl)
        for i in range(start, len(self.layers)):
            feat = self.attend(i, feat, lses[i], out=blocks[i])
        (weight, bias), act = self.fuse
        return act(torch.addmm(bias, parts, weight.t()))

    def _read_buffer(self, rows: int) -> Tensor:
        if self._buffer is None or self._buffer.size(0) < rows:
            self._buffer = self.pos.new_empty(rows, self.channels, dtype=self.dtype)
        return self._buffer[:rows]

    def set_context(self, context: Tensor) -> None:
        """Fold the cloud's context term of the first head layer into its bias."""
        bias = F.linear(context, self.context_weight, self.head_bias).squeeze(0)
        self.point_bias = self.head1.fold(self.context_weight, bias)[1].to(self.dtype)

    def head(self, fused: Tensor, out: Tensor | None = None) -> Tensor:
        """Per-point logits from fused features (after :meth:`set_context`)."""
        return self.head_rest(torch.mm(fused, self.point_weight.t()), out=out)

    def head_rest(self, pre: Tensor, out: Tensor | None = None) -> Tensor:
        """Per-point logits from the first head layer's point term ``fused @ W^T``
        (overwritten), written into ``out`` (float32) when given."""
        h = self.head1.activation(pre.add_(self.point_bias)).to(self.tail_dtype)
        (weight, bias), act = self.head2
        h = act(torch.addmm(bias, h, weight.t()))
        weight, bias = self.classifier
        if out is not None and out.dtype == self.tail_dtype:
            return torch.addmm(bias, h, weight.t(), out=out)
        logits = torch.addmm(bias, h, weight.t())
        return logits if out is None else out.copy_(logits)


def _cast(pair: tuple[Tensor, Tensor], dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    return pair[0].to(dtype), pair[1].to(dtype)


@torch.no_grad()
def classify_large(model: PCTClassifier, pos: Tensor, x: Tensor | None = None) -> Tensor:
    """Logits ``(1, num_classes)`` of ONE cloud of any size, embedding only what is used.

    The first stage picks its centres by FPS over all points and groups their ``k``
    nearest points; only those points (at most ``num_samples * k``) go through the
    per-point embedding. Equal to ``model(x, pos)`` in eval mode.
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
