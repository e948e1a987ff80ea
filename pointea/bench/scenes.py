"""Benchmark section ``scenes``: whole-room inference time and peak memory against room size.

One room of ``N`` points (10^5 to 2 x 10^6 by default, plus 2 x 10^4 where self
attention still fits) is segmented whole by :func:`pointea.models.semseg.room_logits`,
the call behind the engine's test evaluation and ``segment_scene``:

* external attention (EA) streams the room exactly, ``--chunk`` points at a time;
* self attention (SA) runs the plain forward while one ``N x N`` float32 map fits
  ``--memory-budget-gib``; beyond it the table gives the bytes one such map would need.

Every measurement runs in a fresh process (the harness's children), so its peak memory
is its own: the process's peak resident size above its size at the start of the call
(the model and the room's ``xyz`` / ``rgb`` are already there), or
``torch.cuda.max_memory_allocated`` above the start on CUDA. Each timing stands next to
its FLOPs, counted on the same call afterwards (``torch.utils.flop_counter``), and their
share of the float32 matrix-product ceiling measured in the same run.

Exactness is checked in its own child: at ``--exact-size`` points (default 10^5, where
the unstreamed forward of the published-width model fits) the streamed logits are
compared with one plain ``model(x, pos)`` over the whole room.

Run alone (the published-width ``pct_semseg`` by default)::

    python -m pointea.bench.scenes --sizes 100000,1000000 --threads 2

or as a section of ``pointea-bench --sections scenes``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import torch

from .harness import (
    Report,
    ceilings,
    child,
    count_flops,
    fmt_bytes,
    fmt_flops,
    fmt_sec,
    machine_info,
    measure,
    share,
    table,
    timed,
)

__all__ = ["SIZES", "QUICK_SIZES", "build_parser", "main", "section_scenes"]

#: room sizes of a full run: 2e4 (self attention still fits), then 1e5 .. 2e6
SIZES = [20_000, 100_000, 250_000, 500_000, 1_000_000, 2_000_000]
QUICK_SIZES = [20_000, 100_000]
#: size of the streamed-versus-unstreamed check (the unstreamed forward must fit)
EXACT_SIZE = 100_000
#: points per chunk of the streamed pass (room_logits' and the engine's default)
CHUNK = 65_536
#: rooms from this size up get their own line of peak memory under the table
LARGE_POINTS = 1_000_000
#: wall-clock limit of one child (2e6 points with the FLOP count on 2 busy cores)
TIMEOUT_S = 4 * 3600


def _room(n: int, device: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A random ``10 x 8 x 3`` m room of ``n`` points: ``xyz`` float32, ``rgb`` uint8."""
    g = torch.Generator().manual_seed(seed)
    xyz = torch.rand(n, 3, generator=g) * torch.tensor([10.0, 8.0, 3.0])
    rgb = torch.randint(0, 256, (n, 3), generator=g, dtype=torch.uint8)
    return xyz.to(device), rgb.to(device)


def _model(name: str, attention: str, device: str) -> torch.nn.Module:
    from pointea.models import create_model

    torch.manual_seed(0)
    model = create_model(name, attention=attention).to(device).eval()
    return model.requires_grad_(False)  # inference only (and the FLOP counter's hooks)


@child("scene_room")
def _child_room(spec: dict) -> dict:
    """One whole-room inference: seconds, peak memory above the start, FLOPs."""
    from pointea.models.semseg import room_logits

    device = spec.get("device", "cpu")
    model = _model(spec["model"], spec["attention"], device)
    xyz, rgb = _room(spec["n"], device)
    out: dict = {}

    def run() -> None:
        with torch.no_grad():
            out["logits"] = room_logits(model, xyz, rgb, chunk_size=spec["chunk"])

    seconds, peak = timed(run, 1, warmup=0, device=device)
    points = int(out.pop("logits").size(0))
    flops = count_flops(run) if spec.get("count_flops", True) else None
    return {"seconds": seconds, "peak_bytes": peak, "flops": flops, "points": points}


@child("scene_exact")
def _child_exact(spec: dict) -> dict:
    """Streamed ``room_logits`` against one plain forward over the same room (EA)."""
    from pointea.models.semseg import room_logits
    from pointea.scene_features import room_features

    device = spec.get("device", "cpu")
    model = _model(spec["model"], "external", device)
    xyz, rgb = _room(spec["n"], device)
    out: dict = {}

    def plain() -> None:
        with torch.no_grad():
            pos, x = room_features(xyz, rgb)
            out["plain"] = model(x, pos)

    seconds, peak = timed(plain, 1, warmup=0, device=device)
    streamed = room_logits(model, xyz, rgb, chunk_size=spec["chunk"])
    ref = out["plain"]
    return {
        "points": int(ref.size(0)),
        "chunks": math.ceil(ref.size(0) / spec["chunk"]),
        "plain_seconds": seconds,
        "plain_peak_bytes": peak,
        "max_abs_diff": float((streamed - ref).abs().max()),
        "max_abs_logit": float(ref.abs().max()),
        "argmax_agreement": float((streamed.argmax(1) == ref.argmax(1)).double().mean()),
    }


def _sa_map_bytes(n: int) -> int:
    """Bytes of one ``N x N`` float32 attention map."""
    return 4 * n * n


def _cells(res: dict, ceiling: float | None) -> list[str]:
    """time, peak memory, FLOP, GFLOP/s (share of the ceiling) of one measurement."""
    if "seconds" not in res:
        return [res.get("skipped") or res.get("error", "-"), "-", "-", "-"]
    return [
        fmt_sec(res["seconds"]),
        fmt_bytes(res["peak_bytes"]),
        fmt_flops(res.get("flops")),
        share(res.get("flops"), res["seconds"], ceiling),
    ]


def _exact_line(res: dict) -> str:
    if "max_abs_diff" not in res:
        return f"Exactness check failed to run: {res.get('error', '?')}."
    rel = res["max_abs_diff"] / max(res["max_abs_logit"], 1e-30)
    return (
        f"Exact: at {res['points']:,} points ({res['chunks']} chunks) the streamed logits "
        f"equal one plain forward over the whole room up to {res['max_abs_diff']:.2g} "
        f"(largest |logit| {res['max_abs_logit']:.3g}, relative {rel:.1g}); the predicted "
        f"class agrees on {res['argmax_agreement']:.4%} of the points. The plain forward "
        f"took {fmt_sec(res['plain_seconds'])} and {fmt_bytes(res['plain_peak_bytes'])} "
        "above the start."
    )


def _large_line(data: list[dict]) -> str:
    """The peak memory of the streamed (EA) rooms of at least ``LARGE_POINTS`` points."""
    big = [d for d in data if d["attention"] == "external" and d["n"] >= LARGE_POINTS]
    big = [d for d in big if "peak_bytes" in d]
    if not big:
        return f"Peak memory at >= {LARGE_POINTS:,} points (EA): not measured."
    parts = [f"{d['n']:,} points: {fmt_bytes(d['peak_bytes'])}" for d in big]
    return f"Peak memory at >= {LARGE_POINTS:,} points (EA, exact): " + "; ".join(parts) + "."


def _settings(args) -> tuple[list[int], str, int, int]:
    quick = getattr(args, "quick", False)
    sizes = getattr(args, "scene_sizes", None) or (QUICK_SIZES if quick else SIZES)
    model = getattr(args, "scene_model", None) or "pct_semseg"
    chunk = getattr(args, "scene_chunk", None) or CHUNK
    exact = getattr(args, "scene_exact_size", None)
    if exact is None:
        exact = min(QUICK_SIZES[-1] if quick else EXACT_SIZE, max(sizes))
    return list(sizes), model, chunk, exact


def section_scenes(rep: Report, args) -> None:
    """Whole-room inference, EA (streamed) beside SA (plain, while it fits), per room size.

    ``args``: ``pointea-bench``'s (``threads``, ``device``, ``quick``,
    ``memory_budget_gib``) plus, when set, ``scene_sizes``, ``scene_model``,
    ``scene_chunk``, ``scene_exact_size`` (0: no exactness check), ``no_flops``.
    """
    sizes, model, chunk, exact_n = _settings(args)
    flops = not getattr(args, "no_flops", False)
    device = getattr(args, "device", "cpu")
    ceiling = ceilings(rep, args)["float32"]
    budget = args.memory_budget_gib * 2**30
    rows, data = [], []
    for n in sizes:
        row = [f"{n:,}"]
        for attention in ("external", "self"):
            if attention == "self" and _sa_map_bytes(n) > budget:
                res = {"skipped": f"one N x N map needs {fmt_bytes(_sa_map_bytes(n))}"}
            else:
                spec = {
                    "kind": "scene_room",
                    "model": model,
                    "attention": attention,
                    "n": n,
                    "chunk": chunk,
                    "device": device,
                    "count_flops": flops,
                }
                res = measure(spec, args.threads, timeout=TIMEOUT_S)
            data.append({"n": n, "attention": attention, **res})
            print(f"scenes: {n:,} points, {attention}: {res}", file=sys.stderr, flush=True)
            row += _cells(res, ceiling)
        rows.append(row)
    notes = []
    if exact_n:
        spec = {"kind": "scene_exact", "model": model, "n": exact_n, "chunk": chunk}
        exact = measure({**spec, "device": device}, args.threads, timeout=TIMEOUT_S)
        rep.data["scenes_exact"] = {"n": exact_n, **exact}
        notes.append(_exact_line(exact))
    notes.append(_large_line(data))
    ea = [d for d in data if d["attention"] == "external" and "seconds" in d]
    if len(ea) >= 2:
        notes.append(
            f"Growth (EA): {ea[-1]['seconds'] / ea[0]['seconds']:.1f}x the time for "
            f"{ea[-1]['n'] / ea[0]['n']:.0f}x the points."
        )
    rep.data["scenes"] = data
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    headers = ["points"] + [
        f"{a} {h}"
        for a in ("EA", "SA")
        for h in ("time", "peak mem", "FLOP", "GFLOP/s (of fp32 ceiling)")
    ]
    rep.add(
        f"## Whole-room semantic segmentation ({model}, exact, one pass, on {device})\n\n"
        + table(headers, rows)
        + f"\n\nEA: room_logits streamed in chunks of {chunk:,} points. SA: the plain forward, "
        f"run only while one N x N float32 map fits {args.memory_budget_gib:g} GiB. Peak "
        "memory above the start of the call (model and room already loaded); "
        + ("FLOPs counted on the same call. " if flops else "FLOPs not counted (--no-flops). ")
        + " ".join(notes)
        + f" Load average at the end: {load}."
    )


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(float(s)) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated point counts such as 100000,1e6, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected point counts >= 1, got {text!r}")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pointea.bench.scenes",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--sizes",
        type=_sizes,
        default=None,
        help=f"room sizes in points, comma-separated, 1e6 read as 1000000 (default {SIZES})",
    )
    p.add_argument("--model", default="pct_semseg", help="registered semseg model")
    p.add_argument("--chunk", type=int, default=CHUNK, help="points per chunk of EA's pass")
    p.add_argument(
        "--exact-size",
        type=int,
        default=None,
        help=f"points of the streamed-vs-plain check (default min({EXACT_SIZE}, largest "
        "size); 0 skips it)",
    )
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--memory-budget-gib",
        type=float,
        default=4.0,
        help="run SA only while one N x N float32 map fits this",
    )
    p.add_argument(
        "--no-flops",
        action="store_true",
        help="skip the FLOP count (it repeats each inference under the counter)",
    )
    p.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES} unless --sizes")
    p.add_argument("--output-dir", type=Path, default=Path("bench"))
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.chunk < 1:
        parser.error(f"--chunk: expected >= 1 points, got {args.chunk}")
    if args.exact_size is not None and args.exact_size < 0:
        parser.error(f"--exact-size: expected >= 0 points, got {args.exact_size}")
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this torch sees no CUDA device")
    torch.set_num_threads(args.threads)
    args.scene_sizes = args.sizes  # None: SIZES, or QUICK_SIZES with --quick
    args.scene_model, args.scene_chunk = args.model, args.chunk
    args.scene_exact_size = args.exact_size
    rep = Report(args.output_dir)
    rep.add("# pointea benchmark: scenes\n\n" + machine_info(args.threads, args.device))
    section_scenes(rep, args)
    rep.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
