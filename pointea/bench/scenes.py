"""Benchmark section: whole-room inference time and peak memory against room size.

``section_scenes(rep, args)`` follows :mod:`pointea.bench.run`'s sections (a ``Report``
and the parsed ``pointea-bench`` arguments: ``threads``, ``quick``, ``chunk``,
``memory_budget_gib``). Each measurement runs in a fresh process (the harness's children), so its
peak resident memory is its own. External attention segments each room exactly in
chunks (:func:`pointea.models.semseg.room_logits`); self attention runs the plain
forward while its ``N x N`` maps fit the memory budget, and beyond it the table gives
the memory one such map would need. Also runnable alone::

    python -m pointea.bench.scenes --sizes 100000,1000000 --threads 2
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import torch

from .harness import child, measure
from .run import Report, machine_info, table

__all__ = ["section_scenes", "main"]

SIZES = [100_000, 250_000, 500_000, 1_000_000, 2_000_000]
QUICK_SIZES = [100_000, 250_000]


@child("scene_room")
def _child(spec: dict) -> dict:
    """One whole-room inference in this process: seconds and peak RSS above the start."""
    from pointea.models import create_model
    from pointea.models.semseg import room_logits

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    torch.manual_seed(0)
    model = create_model(spec["model"], attention=spec["attention"]).eval()
    n = spec["n"]
    xyz = torch.rand(n, 3) * torch.tensor([10.0, 8.0, 3.0])
    rgb = torch.randint(0, 256, (n, 3), dtype=torch.uint8)
    base = rss()
    t = time.perf_counter()
    logits = room_logits(model, xyz, rgb, chunk_size=spec["chunk"])
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {"seconds": seconds, "peak_bytes": max(peak, 0), "points": int(logits.size(0))}


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def section_scenes(rep: Report, args) -> None:
    """Whole-room inference (pct_semseg, published widths) from 1e5 to 2e6 points."""
    sizes = getattr(args, "scene_sizes", None) or (QUICK_SIZES if args.quick else SIZES)
    model = getattr(args, "scene_model", "pct_semseg")
    budget = args.memory_budget_gib * 2**30
    rows, data = [], []
    for n in sizes:
        row = [f"{n:,}"]
        for attention in ("external", "self"):
            sa_map = 4 * n * n  # one float32 N x N attention map
            if attention == "self" and sa_map > budget:
                res = {"skipped": f"needs >= {_gib(sa_map)} per map"}
            else:
                spec = {
                    "kind": "scene_room",
                    "model": model,
                    "attention": attention,
                    "n": n,
                    "chunk": args.chunk,
                }
                res = measure(spec, args.threads)
            data.append({"n": n, "attention": attention, **res})
            if "seconds" in res:
                row += [f"{res['seconds']:.2f} s", _gib(res["peak_bytes"])]
            else:
                row += [res.get("skipped") or res.get("error", "-"), "-"]
        rows.append(row)
    load = os.getloadavg()[0]
    rep.data["scenes"] = data
    rep.add(
        f"## Whole-room semantic segmentation ({model}, exact, one pass)\n\n"
        + table(["points", "EA time", "EA peak mem", "SA time", "SA peak mem"], rows)
        + f"\n\nEA streams chunks of {args.chunk:,} points; SA runs only while one N x N map "
        f"fits {args.memory_budget_gib:g} GiB. Load average during the run: {load:.1f}."
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pointea.bench.scenes", description=__doc__)
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="room sizes, comma-separated")
    p.add_argument("--model", default="pct_semseg", help="registered semseg model")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--chunk", type=int, default=65_536)
    p.add_argument("--memory-budget-gib", type=float, default=4.0)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--output-dir", type=Path, default=Path("bench"))
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    args.scene_sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.scene_model = args.model
    rep = Report(args.output_dir)
    rep.add("# pointea benchmark: scenes\n\n" + machine_info(args.threads))
    section_scenes(rep, args)
    rep.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
