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
        sec, peak = timed(lambda: model(pos, category), spec["reps"], device=device)
        flops = count_flops(lambda: model(pos, category))
    return {"seconds": sec, "peak_bytes": peak, "flops": flops}


@child("stream")
def _child_stream(spec: dict) -> dict:
    from pointea.models import create_model
    from pointea.models.streaming import classify_large, segment_large

    device, amp = spec.get("device", "cpu"), spec.get("amp")
    torch.manual_seed(0)
    pos = torch.rand(spec["n"], 3, device=device) * 2 - 1
    if spec["task"] == "segmentation":
        model = create_model("pct_seg").to(device).eval()

        def run(p=pos, chunk=spec["chunk"]):
            with autocast(device, amp):
                return segment_large(model, p, 0, chunk_size=chunk)

        sec, peak = timed(run, 1, warmup=0, device=device)
        n0 = min(spec["n"], _FLOP_SAMPLE)
        flops = count_flops(lambda: run(pos[:n0], min(spec["chunk"], n0))) * spec["n"] / n0
    else:
        model = create_model("pct_cls").to(device).eval()

        def run():
            with autocast(device, amp):
                return classify_large(model, pos)

        sec, peak = timed(run, 1, warmup=0, device=device)
        flops = count_flops(run)
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
