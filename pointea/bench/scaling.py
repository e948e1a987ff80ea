"""Benchmark section ``scaling``: segmenter inference on growing clouds, then a million.

Segmenter inference on one cloud from 16k to 256k points, then exact chunked inference
(:mod:`pointea.models.streaming`) on a 1,000,000-point cloud, segmentation (float32 and
bf16 autocast) and classification, each with its FLOPs and share of the ceiling.
"""

from __future__ import annotations

import torch

from .harness import (
    autocast,
    ceilings,
    child,
    count_flops,
    flop_counter,
    fmt_bytes,
    fmt_flops,
    fmt_sec,
    measure,
    section,
    share,
    table,
    timed,
)

# streaming segmentation's FLOPs are per point (plus a per-chunk constant): counted on a
# cloud this large and scaled to the measured one, instead of a second million-point run
_FLOP_SAMPLE = 32_768


@child("seg_infer")
def _child_seg_infer(spec: dict) -> dict:
    from pointea.models import create_model

    device = spec.get("device", "cpu")
    torch.manual_seed(0)
    model = create_model("pct_seg").to(device).eval()
    pos = torch.rand(spec["n"], 3, device=device)
    category = torch.tensor([0], device=device)
    with torch.no_grad():
        sec, peak = timed(lambda: model(None, pos, category=category), spec["reps"], device=device)
        flops = count_flops(lambda: model(None, pos, category=category))
    return {"seconds": sec, "peak_bytes": peak, "flops": flops}


@child("stream")
def _child_stream(spec: dict) -> dict:
    from pointea.models import create_model
    from pointea.models.chunks import DEFAULT_CHUNK
    from pointea.models.streaming import classify_large, segment_large

    device, amp = spec.get("device", "cpu"), spec.get("amp")
    torch.manual_seed(0)
    n = spec["n"]
    pos = torch.rand(n, 3, device=device) * 2 - 1
    if spec["task"] == "segmentation":
        model = create_model("pct_seg").to(device).eval()
        chunk = spec.get("chunk") or DEFAULT_CHUNK
        cache, spill = spec.get("cache_bytes", 2**30), spec.get("spill", True)

        def run(p=pos, chunk=chunk, cache=cache, stats=None):
            with autocast(device, amp):
                return segment_large(
                    model, p, 0, chunk_size=chunk, cache_bytes=cache, spill=spill, stats=stats
                )

        stats: dict = {}
        sec, peak = timed(lambda: run(stats=stats), 1, warmup=0, device=device)
        # the same plan on a sample, its cache scaled so the same share of points is
        # cached / spilled / recomputed, in several chunks when the cloud has several
        # (one chunk re-runs nothing, so spills nothing); the FLOPs per point are then
        # the same
        n0 = min(n, _FLOP_SAMPLE)
        sample: dict = {"flop_counter": flop_counter()}
        with sample["flop_counter"]:
            run(pos[:n0], min(chunk, n0 if n0 == n else n0 // 4), cache * n0 // n, sample)
        per_pass = {k: v * n / n0 for k, v in sample["flops"].items()}
        return {
            "seconds": sec,
            "peak_bytes": peak + pos.numel() * pos.element_size(),
            "flops": sum(per_pass.values()),
            "pass_seconds": stats["seconds"],
            "pass_flops": per_pass,
            "rows": {k: stats[k] for k in ("cached", "spilled", "recomputed")},
        }
    model = create_model("pct_cls").to(device).eval()

    def run_cls():
        with autocast(device, amp):
            return classify_large(model, pos)

    sec, peak = timed(run_cls, 1, warmup=0, device=device)
    flops = count_flops(run_cls)
    return {"seconds": sec, "peak_bytes": peak + pos.numel() * pos.element_size(), "flops": flops}


@section("scaling")
def section_scaling(rep, args) -> None:
    ceiling = ceilings(rep, args)
    sizes = [16384, 65536] if args.quick else [16384, 65536, 262144]
    rows, data = [], []
    for n in sizes:
        res = measure({"kind": "seg_infer", "n": n, "reps": 3, "device": args.device}, args.threads)
        data.append({"n": n, **res})
        rows.append(
            [
                f"{n:,}",
                fmt_sec(res.get("seconds")) if "seconds" in res else res["error"],
                fmt_bytes(res.get("peak_bytes")),
                fmt_flops(res.get("flops")),
                share(res.get("flops"), res.get("seconds"), ceiling["float32"]),
            ]
        )
    first = data[0].get("seconds")
    last = data[-1].get("seconds")
    growth = (
        f"{last / first:.1f}x for {sizes[-1] // sizes[0]}x the points" if first and last else "-"
    )
    rep.add(
        "## Segmenter inference, one cloud (external attention, float32)\n\n"
        + table(["points", "time", "peak mem", "FLOP", "GFLOP/s (of fp32 ceiling)"], rows)
        + f"\n\nGrowth: {growth}."
    )
    n_big = 200_000 if args.quick else 1_000_000
    stream = []
    for task, amp in (("segmentation", None), ("segmentation", "bf16"), ("classification", None)):
        res = measure(
            {
                "kind": "stream",
                "task": task,
                "amp": amp,
                "n": n_big,
                "chunk": args.chunk,
                "device": args.device,
            },
            args.threads,
        )
        stream.append(
            [
                task + (f" {amp}" if amp else ""),
                f"{n_big:,}",
                fmt_sec(res.get("seconds")) if "seconds" in res else res["error"],
                fmt_bytes(res.get("peak_bytes")),
                fmt_flops(res.get("flops")),
                share(res.get("flops"), res.get("seconds"), ceiling[amp or "float32"]),
            ]
        )
        data.append({"stream": task, "amp": amp, "n": n_big, **res})
    sa_map = 4 * n_big * n_big
    rep.data["scaling"] = data
    rep.add(
        "## Exact chunked inference on one large cloud\n\n"
        + table(
            ["task", "points", "time", "peak mem above start", "FLOP", "GFLOP/s (of ceiling)"],
            stream,
        )
        + f"\n\nSegmentation FLOPs counted on {_FLOP_SAMPLE:,} points and scaled (they are "
        "per point). Self attention cannot do this: one "
        f"{n_big:,} x {n_big:,} float32 attention map is {fmt_bytes(sa_map)}."
    )


_PASSES = ("normalisers", "pools", "logits")


@section("stream_sweep")
def section_stream_sweep(rep, args) -> None:
    """Streaming segmentation side by side: chunk sizes, spill file vs recomputation.

    Every variant runs in its own child process, one after another in one run (compare
    ratios within a run). The head-term cache holds half of the points at every size
    (1 GiB for 2^20 points, the default); the other half is spilled or recomputed.
    131,072 points for every chunk size from 1,024 to 32,768 without spill files and for
    chunk 16,384 with them, then 1,048,576 points (not with ``--quick``) for ``--chunk``
    and chunk 16,384 without spill files and for chunk 16,384 with them.
    """

    ceiling = ceilings(rep, args)["float32"]
    runs = [(2**17, c, False) for c in (1024, 2048, 4096, 8192, 16384, 32768)]
    runs.append((2**17, 16384, True))
    if not args.quick:
        runs += list(dict.fromkeys([(2**20, args.chunk, False), (2**20, 16384, False)]))
        runs.append((2**20, 16384, True))
    headers = [
        "points",
        "chunk",
        "uncached rows",
        "time",
        "peak mem above start",
        "FLOP",
        "GFLOP/s (of fp32 ceiling)",
        *(f"pass: {p}" for p in _PASSES),
    ]
    rows, data = [], []
    for n, chunk, spill in runs:
        # the cache holds half the points at every size, as 1 GiB does for 2^20 points
        cache = 2**30 * n // 2**20
        spec = {
            "kind": "stream",
            "task": "segmentation",
            "n": n,
            "chunk": chunk,
            "cache_bytes": cache,
        }
        res = measure({**spec, "spill": spill, "device": args.device}, args.threads)
        data.append({**spec, "spill": spill, **res})
        if "seconds" not in res:
            rows.append([f"{n:,}", f"{chunk:,}", "file" if spill else "recompute", res["error"]])
            rows[-1] += ["-"] * (len(headers) - len(rows[-1]))
            continue
        sec, flops = res["pass_seconds"], res["pass_flops"]
        rows.append(
            [
                f"{n:,}",
                f"{chunk:,}",
                "file" if spill else "recompute",
                fmt_sec(res["seconds"]),
                fmt_bytes(res["peak_bytes"]),
                fmt_flops(res["flops"]),
                share(res["flops"], res["seconds"], ceiling),
                *(f"{fmt_sec(sec[p])}, {share(flops[p], sec[p], ceiling)}" for p in _PASSES),
            ]
        )
    rep.data["stream_sweep"] = data
    rep.add(
        "## Streaming segmentation, side by side (pct_seg, float32, half the points cached)\n\n"
        + table(headers, rows)
        + f"\n\nFLOPs counted on {_FLOP_SAMPLE:,} points with the cache scaled to the same "
        "share of points, and scaled to the measured cloud."
    )
