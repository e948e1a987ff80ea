"""``pointea-bench`` / ``python scripts/benchmark.py``: measure, print tables, plot.

Every number comes from this run on this machine; every comparison is a ratio of two
numbers measured in the same run. Each measurement runs in a fresh child process, so its
peak memory (``ru_maxrss`` above the child's resident size before the measured work) is
its own. Sections:

- ``attention``: one attention layer alone (forward, 128 channels), external vs self,
  time and peak memory against the number of points; self attention until its
  ``N x N`` maps no longer fit (it is then reported with the memory it would need).
- ``models``: classifier and segmenter training-step and inference throughput
  (clouds/s), external vs self, at batch 16 / 32 and 1024 / 2048 points, with the
  dense research-style reference classifier beside pointea's packed one; each training
  step's GFLOP (``torch.utils.flop_counter``) and achieved GFLOP/s as a fraction of this
  CPU's matrix-product ceiling, measured in the same run (float32 and bfloat16).
- ``breakdown``: where a classifier training step spends its time: sampling and
  grouping, attention (forward + backward), the rest, and the data path.
- ``scaling``: segmenter inference on one cloud from 16k to 256k points, then exact
  chunked inference on a 1,000,000-point cloud (segmenter and classifier).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

SECTIONS = ("attention", "models", "breakdown", "scaling")


# --------------------------------------------------------------------------- child side
def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _timed(fn: Callable[[], Any], reps: int, warmup: int = 1) -> tuple[float, int]:
    """Median seconds of ``fn`` over ``reps`` runs and the peak memory above the start."""
    base = _rss_bytes()
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), max(0, _peak_bytes() - base)


def _clouds(batch: int, points: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(batch * points, 3, generator=g) * 2 - 1
    return pos, torch.arange(batch).repeat_interleave(points)


def _child_attention(spec: dict) -> dict:
    from pointea.nn import ExternalAttention, SelfAttention

    n, c = spec["n"], spec["channels"]
    layer = (
        ExternalAttention(c, spec["memory_units"])
        if spec["attention"] == "external"
        else SelfAttention(c)
    )
    x = torch.randn(n, c)
    with torch.no_grad():
        sec, peak = _timed(lambda: layer(x), spec["reps"])
    return {"seconds": sec, "peak_bytes": peak}


def _build(spec: dict):
    from pointea.bench.dense_pct import DensePCT
    from pointea.models import create_model

    if spec.get("impl") == "dense":
        return DensePCT(attention=spec["attention"])
    return create_model(spec["model"], attention=spec["attention"])


def _step_fn(model, spec: dict):
    b, n = spec["batch"], spec["points"]
    pos, batch = _clouds(b, n)
    seg = spec["model"].startswith("pct_seg")
    dense = spec.get("impl") == "dense"
    if seg:
        target = torch.randint(0, 50, (b * n,))
        category = torch.randint(0, 16, (b,))
    else:
        target = torch.randint(0, 40, (b,))
    dense_input = pos.view(b, n, 3).permute(0, 2, 1).contiguous()

    def forward():
        if dense:
            return model(dense_input)
        if seg:
            return model(pos, category, batch)
        return model(pos, batch)

    ctx = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        if spec.get("bf16")
        else (lambda: torch.autocast("cpu", enabled=False))
    )
    if spec["mode"] == "infer":
        model.eval()

        def infer():
            with torch.no_grad(), ctx():
                forward()

        return infer, forward, target
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        with ctx():
            loss = torch.nn.functional.cross_entropy(forward().float(), target)
        loss.backward()
        opt.step()

    return step, forward, target


def _child_step(spec: dict) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = _build(spec)
    fn, forward, target = _step_fn(model, spec)
    sec, peak = _timed(fn, spec["reps"])
    flops = None
    if spec.get("count_flops"):
        counter = FlopCounterMode(display=False)
        with counter:
            out = forward()
            if spec["mode"] == "train":
                torch.nn.functional.cross_entropy(out.float(), target).backward()
        flops = counter.get_total_flops()
    return {"seconds": sec, "peak_bytes": peak, "flops": flops}


def _child_matmul(spec: dict) -> dict:
    dtype = getattr(torch, spec["dtype"])
    a = torch.randn(4096, 4096).to(dtype)
    b = torch.randn(4096, 4096).to(dtype)
    sec, _ = _timed(lambda: a @ b, spec["reps"])
    return {"seconds": sec, "gflops": 2 * 4096**3 / sec / 1e9}


def _child_breakdown(spec: dict) -> dict:
    from torch.profiler import ProfilerActivity, profile

    from pointea.models import create_model

    torch.manual_seed(0)
    model = create_model("pct_cls", attention=spec["attention"]).train()
    step, _, _ = _step_fn(model, {**spec, "model": "pct_cls", "mode": "train"})
    step_sec, _ = _timed(step, spec["reps"])
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    total_us = sum(e.self_cpu_time_total for e in events)
    sampling_us = sum(
        e.cpu_time_total for e in events if e.key in ("torch_cluster::fps", "torch_cluster::knn")
    )
    # attention layers alone, forward + backward, on the inputs they see in the step
    captured = {}

    def grab(_module, args, _kwargs):
        captured.setdefault("x", args[0].detach())

    model.attention[0].register_forward_pre_hook(grab, with_kwargs=True)
    step()
    x = captured["x"].requires_grad_(True)
    layout_batch = torch.arange(spec["batch"]).repeat_interleave(x.size(0) // spec["batch"])

    def attention_only():
        feat = x
        for layer in model.attention:
            feat = layer(feat, layout_batch)
        feat.sum().backward()

    attn_sec, _ = _timed(attention_only, spec["reps"])
    data_sec = _data_path_seconds(spec["batch"], spec["points"], spec["reps"])
    sampling_sec = step_sec * sampling_us / max(total_us, 1)
    return {
        "step": step_sec,
        "sampling": sampling_sec,
        "attention": attn_sec,
        "rest": max(0.0, step_sec - sampling_sec - attn_sec),
        "data": data_sec,
    }


def _data_path_seconds(batch: int, points: int, reps: int) -> float:
    """Training transforms + collate of one batch of 2048-point clouds (the engine's own)."""
    from torch_geometric.data import Batch, Data

    from pointea.engine.config import TrainConfig
    from pointea.engine.trainer import build_transforms

    cfg = TrainConfig(task="modelnet40", num_points=points).resolved()
    augment = build_transforms(cfg, train=True)
    g = torch.Generator().manual_seed(0)
    samples = [
        Data(pos=torch.rand(2048, 3, generator=g), y=torch.tensor([i % 40])) for i in range(batch)
    ]
    sec, _ = _timed(lambda: Batch.from_data_list([augment(s) for s in samples]), reps)
    return sec


def _child_seg_infer(spec: dict) -> dict:
    from pointea.models import create_model

    torch.manual_seed(0)
    model = create_model("pct_seg").eval()
    pos = torch.rand(spec["n"], 3)
    with torch.no_grad():
        sec, peak = _timed(lambda: model(pos, torch.tensor([0])), spec["reps"])
    return {"seconds": sec, "peak_bytes": peak}


def _child_stream(spec: dict) -> dict:
    from pointea.models import create_model
    from pointea.models.streaming import classify_large, segment_large

    torch.manual_seed(0)
    pos = torch.rand(spec["n"], 3) * 2 - 1
    if spec["task"] == "segmentation":
        model = create_model("pct_seg").eval()
        sec, peak = _timed(
            lambda: segment_large(model, pos, 0, chunk_size=spec["chunk"]), 1, warmup=0
        )
    else:
        model = create_model("pct_cls").eval()
        sec, peak = _timed(lambda: classify_large(model, pos), 1, warmup=0)
    return {"seconds": sec, "peak_bytes": peak + _rss_bytes_of_inputs(pos)}


def _rss_bytes_of_inputs(pos: torch.Tensor) -> int:
    return pos.numel() * pos.element_size()


CHILDREN = {
    "attention": _child_attention,
    "step": _child_step,
    "matmul": _child_matmul,
    "breakdown": _child_breakdown,
    "seg_infer": _child_seg_infer,
    "stream": _child_stream,
}


# -------------------------------------------------------------------------- parent side
def measure(spec: dict, threads: int, timeout: float = 1800) -> dict:
    """Run one measurement in a fresh process; ``{"error": ...}`` when it fails."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = [
        sys.executable,
        "-m",
        "pointea.bench.run",
        "--child",
        json.dumps(spec),
        "--threads",
        str(threads),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["killed"])[-1]
        if proc.returncode < 0:
            tail = f"killed by signal {-proc.returncode} (out of memory?)"
        return {"error": tail[:160]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine_info(threads: int) -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch_geometric

    from pointea import __version__

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"machine: {cpu}, {os.cpu_count()} cores, {mem:.0f} GiB; threads used: {threads}\n"
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"torch_geometric {torch_geometric.__version__}, pointea {__version__}"
    )


def _fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def _fmt_sec(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    return "\n".join([line, sep, *body])


class Report:
    def __init__(self, out: Path) -> None:
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.parts: list[str] = []
        self.data: dict[str, Any] = {}

    def add(self, text: str) -> None:
        print(text, flush=True)
        self.parts.append(text)

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "benchmark.md").write_text("\n\n".join(self.parts) + "\n")
        (self.out / "benchmark.json").write_text(json.dumps(self.data, indent=2) + "\n")


def section_attention(rep: Report, args) -> None:
    sizes = [1024, 4096, 16384] if args.quick else [1024, 4096, 16384, 65536, 262144, 1048576]
    budget = args.memory_budget_gib * 2**30
    rows, data = [], []
    for n in sizes:
        ea = measure(
            {
                "kind": "attention",
                "attention": "external",
                "n": n,
                "channels": 128,
                "memory_units": 64,
                "reps": args.reps,
            },
            args.threads,
        )
        need = 3 * 4 * n * n  # energy, softmax and normalised maps in float32
        if need > budget:
            sa = {"error": f"needs ~{_fmt_bytes(need)} for its N x N maps"}
        else:
            sa = measure(
                {
                    "kind": "attention",
                    "attention": "self",
                    "n": n,
                    "channels": 128,
                    "memory_units": 64,
                    "reps": args.reps,
                },
                args.threads,
            )
        ratio = (
            f"{sa['seconds'] / ea['seconds']:.1f}x" if "seconds" in sa and "seconds" in ea else "-"
        )
        rows.append(
            [
                f"{n:,}",
                _fmt_sec(ea.get("seconds")),
                _fmt_bytes(ea.get("peak_bytes")),
                _fmt_sec(sa.get("seconds")) if "seconds" in sa else sa["error"],
                _fmt_bytes(sa.get("peak_bytes")),
                ratio,
            ]
        )
        data.append({"n": n, "external": ea, "self": sa})
    rep.data["attention"] = data
    rep.add(
        "## Attention layer alone (one cloud, 128 channels, forward)\n\n"
        + table(
            [
                "points",
                "external time",
                "external peak mem",
                "self time",
                "self peak mem",
                "self / external time",
            ],
            rows,
        )
    )
    _plot_attention(data, rep.out / "attention_scaling.png")


def section_models(rep: Report, args) -> None:
    ceilings = {
        d: measure({"kind": "matmul", "dtype": d, "reps": 3}, args.threads)
        for d in ("float32", "bfloat16")
    }
    rep.data["matmul_ceiling"] = ceilings
    rep.add(
        "## Matrix-product ceiling (4096 x 4096, this machine, this run)\n\n"
        + table(
            ["dtype", "GFLOP/s"], [[d, f"{c.get('gflops', 0):.0f}"] for d, c in ceilings.items()]
        )
    )
    ceiling32 = ceilings["float32"].get("gflops")
    configs = [(16, 1024)] if args.quick else [(16, 1024), (32, 1024), (16, 2048), (32, 2048)]
    variants = [
        ("pct_cls", "packed", "external", False),
        ("pct_cls", "packed", "self", False),
        ("pct_cls", "dense", "self", False),
        ("pct_cls", "dense", "external", False),
        ("pct_cls", "packed", "external", True),
        ("pct_seg", "packed", "external", False),
        ("pct_seg", "packed", "self", False),
    ]
    rows, data = [], []
    for batch, points in configs:
        for model, impl, attention, bf16 in variants:
            row = {
                "model": model,
                "impl": impl,
                "attention": attention,
                "bf16": bf16,
                "batch": batch,
                "points": points,
            }
            base = {"kind": "step", **row, "reps": args.reps}
            train = measure({**base, "mode": "train", "count_flops": True}, args.threads)
            infer = measure({**base, "mode": "infer"}, args.threads)
            row.update(train=train, infer=infer)
            data.append(row)
            name = ("dense reference" if impl == "dense" else "pointea") + f" {model}"
            gflops = train.get("flops")
            achieved = gflops / train["seconds"] / 1e9 if gflops and "seconds" in train else None
            frac = f"{achieved / ceiling32:.0%}" if achieved and ceiling32 else "-"
            rows.append(
                [
                    name,
                    attention + (" bf16" if bf16 else ""),
                    f"{batch}x{points}",
                    f"{batch / train['seconds']:.1f}"
                    if "seconds" in train
                    else train.get("error", "-"),
                    f"{batch / infer['seconds']:.1f}"
                    if "seconds" in infer
                    else infer.get("error", "-"),
                    _fmt_bytes(train.get("peak_bytes")),
                    f"{gflops / 1e9:.0f}" if gflops else "-",
                    f"{achieved:.0f} ({frac})" if achieved else "-",
                ]
            )
    rep.data["models"] = data
    rep.add(
        "## Models: throughput (clouds/s), training-step memory and arithmetic\n\n"
        + table(
            [
                "model",
                "attention",
                "batch",
                "train clouds/s",
                "infer clouds/s",
                "train peak mem",
                "GFLOP/step",
                "GFLOP/s (of fp32 ceiling)",
            ],
            rows,
        )
    )
    rep.add(_ratios(data))
    _plot_models(data, rep.out / "throughput.png")


def _find(data, **kw):
    for row in data:
        if all(row.get(k) == v for k, v in kw.items()):
            return row
    return None


def _ratios(data) -> str:
    lines = ["Ratios (same run):"]
    for batch, points in sorted({(r["batch"], r["points"]) for r in data}):

        def tput(batch=batch, points=points, **kw):
            row = _find(data, batch=batch, points=points, **kw)
            return batch / row["train"]["seconds"] if row and "seconds" in row["train"] else None

        def mem(batch=batch, points=points, **kw):
            row = _find(data, batch=batch, points=points, **kw)
            return row["train"].get("peak_bytes") if row else None

        ea = tput(model="pct_cls", impl="packed", attention="external", bf16=False)
        ea16 = tput(model="pct_cls", impl="packed", attention="external", bf16=True)
        ref = tput(model="pct_cls", impl="dense", attention="self", bf16=False)
        dense_ea = tput(model="pct_cls", impl="dense", attention="external", bf16=False)
        seg_ea = tput(model="pct_seg", attention="external")
        seg_sa = tput(model="pct_seg", attention="self")
        m_ea, m_sa = (
            mem(model="pct_seg", attention="external"),
            mem(model="pct_seg", attention="self"),
        )
        parts = [f"- batch {batch} x {points}:"]
        if ea and ref:
            parts.append(
                "EA classifier / dense self-attention reference (PCT_Pytorch-style) "
                f"training {ea / ref:.2f}x;"
            )
        if ea16 and ref:
            parts.append(f"with bf16 autocast {ea16 / ref:.2f}x;")
        if ea and dense_ea:
            parts.append(f"packed EA / dense EA reference {ea / dense_ea:.2f}x;")
        if seg_ea and seg_sa:
            parts.append(f"segmenter EA / self training {seg_ea / seg_sa:.2f}x;")
        if m_ea and m_sa:
            parts.append(f"segmenter EA peak memory = {m_ea / m_sa:.2f} of self's.")
        lines.append(" ".join(parts))
    return "\n".join(lines)


def section_breakdown(rep: Report, args) -> None:
    rows, data = [], {}
    for attention in ("external", "self"):
        res = measure(
            {
                "kind": "breakdown",
                "attention": attention,
                "batch": 16,
                "points": 1024,
                "reps": args.reps,
            },
            args.threads,
        )
        data[attention] = res
        if "error" in res:
            rows.append([attention, res["error"], "", "", "", ""])
            continue
        step = res["step"]
        rows.append(
            [
                attention,
                _fmt_sec(step),
                f"{res['sampling'] / step:.0%}",
                f"{res['attention'] / step:.0%}",
                f"{res['rest'] / step:.0%}",
                f"{_fmt_sec(res['data'])} ({res['data'] / step:.0%})",
            ]
        )
    rep.data["breakdown"] = data
    rep.add(
        "## Where a classifier training step goes (batch 16 x 1024)\n\n"
        + table(
            [
                "attention",
                "step",
                "sampling + grouping",
                "attention (fwd+bwd)",
                "rest",
                "data path per batch (share of step)",
            ],
            rows,
        )
    )


def section_scaling(rep: Report, args) -> None:
    sizes = [16384, 65536] if args.quick else [16384, 65536, 262144]
    rows, data = [], []
    for n in sizes:
        res = measure({"kind": "seg_infer", "n": n, "reps": 3}, args.threads)
        data.append({"n": n, **res})
        rows.append([f"{n:,}", _fmt_sec(res.get("seconds")), _fmt_bytes(res.get("peak_bytes"))])
    first = data[0].get("seconds")
    last = data[-1].get("seconds")
    growth = (
        f"{last / first:.1f}x for {sizes[-1] // sizes[0]}x the points" if first and last else "-"
    )
    rep.add(
        "## Segmenter inference, one cloud (external attention)\n\n"
        + table(["points", "time", "peak mem"], rows)
        + f"\n\nGrowth: {growth}."
    )
    n_big = 200_000 if args.quick else 1_000_000
    stream = []
    for task in ("segmentation", "classification"):
        res = measure(
            {"kind": "stream", "task": task, "n": n_big, "chunk": args.chunk}, args.threads
        )
        stream.append(
            [
                task,
                f"{n_big:,}",
                _fmt_sec(res.get("seconds")),
                _fmt_bytes(res.get("peak_bytes")) if "peak_bytes" in res else res.get("error", "-"),
            ]
        )
        data.append({"stream": task, "n": n_big, **res})
    sa_map = 4 * n_big * n_big
    rep.data["scaling"] = data
    rep.add(
        "## Exact chunked inference on one large cloud\n\n"
        + table(["task", "points", "time", "peak mem above start"], stream)
        + f"\n\nSelf attention cannot do this: one {n_big:,} x {n_big:,} float32 attention map "
        f"is {_fmt_bytes(sa_map)}."
    )


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


def _plot_models(data, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, train, infer = [], [], []
    for r in data:
        if "seconds" not in r["train"] or "seconds" not in r["infer"]:
            continue
        impl = "dense ref" if r["impl"] == "dense" else "pointea"
        labels.append(
            f"{impl} {r['model'][4:]} {r['attention'][:3]}{' bf16' if r['bf16'] else ''}\n"
            f"{r['batch']}x{r['points']}"
        )
        train.append(r["batch"] / r["train"]["seconds"])
        infer.append(r["batch"] / r["infer"]["seconds"])
    fig, ax = plt.subplots(figsize=(max(8, len(labels) * 0.9), 4.5))
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], train, 0.4, label="train")
    ax.bar([x + 0.2 for x in xs], infer, 0.4, label="inference")
    ax.set_xticks(list(xs), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("clouds / s")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pointea-bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {', '.join(SECTIONS)}",
    )
    p.add_argument("--quick", action="store_true", help="small sizes only (a few minutes)")
    p.add_argument("--reps", type=int, default=3, help="timed repetitions per measurement (median)")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1), help="torch threads")
    p.add_argument("--chunk", type=int, default=65536, help="chunk size of the streaming runs")
    p.add_argument(
        "--memory-budget-gib",
        type=float,
        default=12.0,
        help="skip self attention when its N x N maps would exceed this",
    )
    p.add_argument(
        "--output-dir", type=Path, default=Path("bench"), help="where tables and plots go"
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(CHILDREN[spec["kind"]](spec)))
        return 0
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        print(f"pointea-bench: error: unknown sections {sorted(unknown)}", file=sys.stderr)
        return 2
    rep = Report(args.output_dir)
    rep.add("# pointea benchmark\n\n" + machine_info(args.threads))
    for name in sections:
        globals()[f"section_{name}"](rep, args)
        rep.save()
    print(f"\nwrote {args.output_dir}/benchmark.md, benchmark.json and plots", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
