"""Benchmark section ``attention``: one attention layer alone, external vs self.

Forward of one layer (128 channels) on one cloud, time, peak memory and FLOPs against
the number of points; self attention until its ``N x N`` maps no longer fit (it is then
reported with the memory it would need).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .harness import (
    ceilings,
    child,
    count_flops,
    fmt_bytes,
    fmt_sec,
    measure,
    section,
    share,
    table,
    timed,
)


@child("attention")
def _child_attention(spec: dict) -> dict:
    from pointea.nn import ExternalAttention, SelfAttention

    device = spec.get("device", "cpu")
    n, c = spec["n"], spec["channels"]
    layer = (
        ExternalAttention(c, spec["memory_units"])
        if spec["attention"] == "external"
        else SelfAttention(c)
    ).to(device)
    x = torch.randn(n, c, device=device)
    with torch.no_grad():
        sec, peak = timed(lambda: layer(x), spec["reps"], device=device)
        flops = count_flops(lambda: layer(x))
    return {"seconds": sec, "peak_bytes": peak, "flops": flops}


@section("attention")
def section_attention(rep, args) -> None:
    sizes = [1024, 4096, 16384] if args.quick else [1024, 4096, 16384, 65536, 262144, 1048576]
    budget = args.memory_budget_gib * 2**30
    ceiling = ceilings(rep, args)["float32"]
    rows, data = [], []
    for n in sizes:
        spec = {
            "kind": "attention",
            "n": n,
            "channels": 128,
            "memory_units": 64,
            "reps": args.reps,
            "device": args.device,
        }
        ea = measure({**spec, "attention": "external"}, args.threads)
        need = 3 * 4 * n * n  # energy, softmax and normalised maps in float32
        if need > budget:
            sa = {"error": f"needs ~{fmt_bytes(need)} for its N x N maps"}
        else:
            sa = measure({**spec, "attention": "self"}, args.threads)
        ratio = (
            f"{sa['seconds'] / ea['seconds']:.1f}x" if "seconds" in sa and "seconds" in ea else "-"
        )
        rows.append(
            [
                f"{n:,}",
                fmt_sec(ea.get("seconds")) if "seconds" in ea else ea["error"],
                fmt_bytes(ea.get("peak_bytes")),
                share(ea.get("flops"), ea.get("seconds"), ceiling),
                fmt_sec(sa.get("seconds")) if "seconds" in sa else sa["error"],
                fmt_bytes(sa.get("peak_bytes")),
                share(sa.get("flops"), sa.get("seconds"), ceiling),
                ratio,
            ]
        )
        data.append({"n": n, "external": ea, "self": sa})
    rep.data["attention"] = data
    rep.add(
        "## Attention layer alone (one cloud, 128 channels, forward, float32)\n\n"
        + table(
            [
                "points",
                "external time",
                "external peak mem",
                "external GFLOP/s (of ceiling)",
                "self time",
                "self peak mem",
                "self GFLOP/s (of ceiling)",
                "self / external time",
            ],
            rows,
        )
    )
    _plot_attention(data, rep.out / "attention_scaling.png")


def _plot_attention(data, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for kind, style in (("external", "o-"), ("self", "s--")):
        pts = [(d["n"], d[kind]) for d in data if "seconds" in d[kind]]
        if not pts:
            continue
        axes[0].loglog([p[0] for p in pts], [p[1]["seconds"] for p in pts], style, label=kind)
        axes[1].loglog(
            [p[0] for p in pts],
            [max(p[1]["peak_bytes"], 1) / 2**20 for p in pts],
            style,
            label=kind,
        )
    axes[0].set(xlabel="points", ylabel="seconds", title="attention layer time")
    axes[1].set(xlabel="points", ylabel="MiB", title="attention layer peak memory")
    for ax in axes:
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
