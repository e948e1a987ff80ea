"""Benchmark section ``models``: classifier and segmenter throughput and arithmetic.

Training-step and inference throughput (clouds/s), external vs self attention, at batch
16 / 32 and 1024 / 2048 points, with the dense research-style reference classifier
beside pointea's packed one; every timing with its GFLOP (``torch.utils.flop_counter``)
and the achieved GFLOP/s as a share of the matrix-product ceiling of the same precision,
measured in the same run. Autocast variants: bf16 everywhere, fp16 on CUDA.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from .harness import (
    autocast,
    ceilings,
    child,
    clouds,
    count_flops,
    fmt_bytes,
    measure,
    section,
    share,
    sync,
    table,
    timed,
)


def build_model(spec: dict):
    """The model a step spec names: ``create_model(spec["model"])`` or the dense reference."""
    from pointea.bench.dense_pct import DensePCT
    from pointea.models import create_model

    if spec.get("impl") == "dense":
        model = DensePCT(attention=spec["attention"])
    else:
        model = create_model(spec["model"], attention=spec["attention"])
    return model.to(spec.get("device", "cpu"))


def step_fn(model, spec: dict):
    """``(run, forward, loss)``: one training step or inference call, as the spec says."""
    device = spec.get("device", "cpu")
    amp = spec.get("amp")
    b, n = spec["batch"], spec["points"]
    pos, batch = clouds(b, n, device=device)
    seg = spec["model"].startswith("pct_seg")
    dense = spec.get("impl") == "dense"
    if seg:
        target = torch.randint(0, 50, (b * n,), device=device)
        category = torch.randint(0, 16, (b,), device=device)
    else:
        target = torch.randint(0, 40, (b,), device=device)
    dense_input = pos.view(b, n, 3).permute(0, 2, 1).contiguous()

    def forward():
        with autocast(device, amp):
            if dense:
                return model(dense_input)
            if seg:
                return model(None, pos, batch, category=category)
            return model(None, pos, batch)

    def loss():
        return torch.nn.functional.cross_entropy(forward().float(), target)

    if spec["mode"] == "infer":
        model.eval()

        def infer():
            with torch.no_grad():
                forward()

        return infer, infer, loss
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    scaler = torch.amp.GradScaler(torch.device(device).type, enabled=amp == "fp16")

    def step():
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss()).backward()
        scaler.step(opt)
        scaler.update()

    return step, lambda: loss().backward(), loss


@child("step")
def _child_step(spec: dict) -> dict:
    torch.manual_seed(0)
    model = build_model(spec)
    device = spec.get("device", "cpu")
    out = {}
    if spec.get("compile"):  # the same module behind torch.compile; the first call compiles
        run, _, _ = step_fn(torch.compile(model), spec)
        start = time.perf_counter()
        run()
        sync(device)
        out["compile_seconds"] = time.perf_counter() - start
    else:
        run, _, _ = step_fn(model, spec)
    sec, peak = timed(run, spec["reps"], device=device)
    # the FLOPs of the eager step (the same arithmetic; the counter cannot see into
    # compiled kernels)
    flops = count_flops(step_fn(model, spec)[1]) if spec.get("count_flops") else None
    return {"seconds": sec, "peak_bytes": peak, "flops": flops, **out}


def _variants(device: str, compiled: bool = False) -> list[tuple[str, str, str, str | None, bool]]:
    """``(model, impl, attention, amp, compile)`` of each row; ``compiled`` adds the EA
    classifier behind ``torch.compile`` (float32 and bf16) beside its eager rows."""
    out = [
        ("pct_cls", "packed", "external", None, False),
        ("pct_cls", "packed", "self", None, False),
        ("pct_cls", "dense", "self", None, False),
        ("pct_cls", "dense", "external", None, False),
        ("pct_cls", "packed", "external", "bf16", False),
        ("pct_seg", "packed", "external", None, False),
        ("pct_seg", "packed", "self", None, False),
    ]
    if torch.device(device).type == "cuda":
        out += [
            ("pct_cls", "packed", "external", "fp16", False),
            ("pct_cls", "dense", "self", "fp16", False),
        ]
    if compiled:
        at = 1 + next(
            i for i, v in enumerate(out) if v[:4] == ("pct_cls", "packed", "external", None)
        )
        out.insert(at, ("pct_cls", "packed", "external", None, True))
        at = 1 + next(i for i, v in enumerate(out) if v[3] == "bf16")
        out.insert(at, ("pct_cls", "packed", "external", "bf16", True))
    return out


@section("models")
def section_models(rep, args) -> None:
    ceiling = ceilings(rep, args)
    configs = [(16, 1024)] if args.quick else [(16, 1024), (32, 1024), (16, 2048), (32, 2048)]
    rows, data = [], []
    for batch, points in configs:
        for model, impl, attention, amp, compiled in _variants(
            args.device, getattr(args, "compile", False)
        ):
            row = {
                "model": model,
                "impl": impl,
                "attention": attention,
                "amp": amp,
                "batch": batch,
                "points": points,
            }
            if compiled:
                row["compile"] = True
            base = {"kind": "step", **row, "reps": args.reps, "device": args.device}
            train = measure({**base, "mode": "train", "count_flops": True}, args.threads)
            infer = measure({**base, "mode": "infer", "count_flops": True}, args.threads)
            row.update(train=train, infer=infer)
            data.append(row)
            name = ("dense reference" if impl == "dense" else "pointea") + f" {model}"
            if compiled:
                took = train.get("compile_seconds")
                name += " compiled" + (f" (first step {took:.0f} s)" if took else "")
            peak = ceiling[amp or "float32"]

            def tput(res, batch=batch):
                return f"{batch / res['seconds']:.1f}" if "seconds" in res else res["error"]

            rows.append(
                [
                    name,
                    attention + (f" {amp}" if amp else ""),
                    f"{batch}x{points}",
                    tput(train),
                    f"{train['flops'] / 1e9:.0f}" if train.get("flops") else "-",
                    share(train.get("flops"), train.get("seconds"), peak),
                    fmt_bytes(train.get("peak_bytes")),
                    tput(infer),
                    share(infer.get("flops"), infer.get("seconds"), peak),
                ]
            )
    rep.data["models"] = data
    rep.add(
        "## Models: throughput (clouds/s), training-step memory and arithmetic\n\n"
        "Shares are of the matrix-product ceiling of the same precision (float32, or the "
        "autocast dtype), measured above in this run.\n\n"
        + table(
            [
                "model",
                "attention",
                "batch",
                "train clouds/s",
                "GFLOP/step",
                "train GFLOP/s (of ceiling)",
                "train peak mem",
                "infer clouds/s",
                "infer GFLOP/s (of ceiling)",
            ],
            rows,
        )
    )
    rep.add(_ratios(data))
    _plot_models(data, rep.out / "throughput.png")


def _find(data, **kw):
    kw.setdefault("compile", None)  # eager rows unless asked
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

        ea = tput(model="pct_cls", impl="packed", attention="external", amp=None)
        ea16 = tput(model="pct_cls", impl="packed", attention="external", amp="bf16")
        ref = tput(model="pct_cls", impl="dense", attention="self", amp=None)
        dense_ea = tput(model="pct_cls", impl="dense", attention="external", amp=None)
        seg_ea = tput(model="pct_seg", attention="external")
        seg_sa = tput(model="pct_seg", attention="self")
        m_ea, m_sa = (
            mem(model="pct_seg", attention="external"),
            mem(model="pct_seg", attention="self"),
        )
        compiled = tput(
            model="pct_cls", impl="packed", attention="external", amp=None, compile=True
        )
        compiled16 = tput(
            model="pct_cls", impl="packed", attention="external", amp="bf16", compile=True
        )
        parts = [f"- batch {batch} x {points}:"]
        if ea and compiled:
            parts.append(f"EA classifier compiled / eager training {compiled / ea:.2f}x;")
        if ea16 and compiled16:
            parts.append(f"bf16 compiled / eager {compiled16 / ea16:.2f}x;")
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
            f"{impl} {r['model'][4:]} {r['attention'][:3]}{' ' + r['amp'] if r['amp'] else ''}"
            f"{' compiled' if r.get('compile') else ''}\n"
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
