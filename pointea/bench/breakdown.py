"""Benchmark section ``breakdown``: where a classifier training step spends its time.

The step's clouds/s and its GFLOP/s as a share of the matrix-product ceiling of its
precision (as in ``models``), then two views of one batch-16 x 1024 step: by stage
(sampling and grouping, the attention layers forward + backward, the rest, and the data
path of one batch) and by operator class from the profiler (matrix products, batch
norm, gathers / scatters, reductions, elementwise), each with its share of the step,
and the matrix products' own GFLOP/s.
"""

from __future__ import annotations

import torch

from .harness import (
    autocast,
    ceilings,
    child,
    count_flops,
    fmt_sec,
    measure,
    section,
    share,
    table,
    timed,
)
from .models import step_fn

# operator classes of the profile, matched on the aten name (first match wins)
OP_CLASSES = (
    ("sampling + grouping", ("torch_cluster::",)),
    ("matrix products", ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul")),
    ("batch norm", ("batch_norm",)),
    (
        "gathers / scatters",
        ("index", "gather", "scatter", "take", "put_", "repeat_interleave", "embedding"),
    ),
    ("reductions", ("max", "amax", "sum", "mean", "logsumexp", "softmax", "norm")),
)


def _op_class(name: str) -> str:
    for label, keys in OP_CLASSES:
        if any(k in name for k in keys):
            return label
    return "elementwise and other"


@child("breakdown")
def _child_breakdown(spec: dict) -> dict:
    from torch.profiler import ProfilerActivity, profile

    from pointea.models import create_model

    device = spec.get("device", "cpu")
    cuda = torch.device(device).type == "cuda"
    torch.manual_seed(0)
    model = create_model("pct_cls", attention=spec["attention"]).to(device).train()
    step, counted, _ = step_fn(model, {**spec, "model": "pct_cls", "mode": "train"})
    step_sec, _ = timed(step, spec["reps"], device=device)
    step_flops = count_flops(counted)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities, record_shapes=True, with_flops=True) as prof:
        step()
    events = prof.key_averages()

    def self_us(e) -> float:
        return e.self_device_time_total if cuda else e.self_cpu_time_total

    total_us = sum(self_us(e) for e in events)
    by_class: dict[str, float] = {}
    mm_flops = 0
    for e in events:
        cls = _op_class(e.key)  # torch_cluster ops are custom: their time is their own
        by_class[cls] = by_class.get(cls, 0.0) + self_us(e)
        if cls == "matrix products":
            mm_flops += e.flops or 0
    shares = {k: v / max(total_us, 1) for k, v in by_class.items()}
    # attention layers alone, forward + backward, on the inputs they see in the step
    captured = {}

    def grab(_module, args, _kwargs):
        captured.setdefault("x", args[0].detach())

    model.attention[0].register_forward_pre_hook(grab, with_kwargs=True)
    step()
    x = captured["x"].requires_grad_(True)
    layout_batch = torch.arange(spec["batch"], device=device).repeat_interleave(
        x.size(0) // spec["batch"]
    )

    def attention_only():
        feat = x
        with autocast(device, spec.get("amp")):
            for layer in model.attention:
                feat = layer(feat, layout_batch)
        feat.float().sum().backward()

    attn_sec, _ = timed(attention_only, spec["reps"], device=device)
    data_sec = _data_path_seconds(spec["batch"], spec["points"], spec["reps"])
    sampling_sec = step_sec * shares.get("sampling + grouping", 0.0)
    return {
        "step": step_sec,
        "step_flops": step_flops,
        "sampling": sampling_sec,
        "attention": attn_sec,
        "rest": max(0.0, step_sec - sampling_sec - attn_sec),
        "data": data_sec,
        "op_shares": shares,
        "matmul_flops": mm_flops,
        "matmul_seconds": step_sec * shares.get("matrix products", 0.0),
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
    sec, _ = timed(lambda: Batch.from_data_list([augment(s) for s in samples]), reps)
    return sec


@section("breakdown")
def section_breakdown(rep, args) -> None:
    ceiling = ceilings(rep, args)
    rows, op_rows, data = [], [], {}
    labels = [label for label, _ in OP_CLASSES] + ["elementwise and other"]
    for attention, amp in (("external", None), ("self", None), ("external", "bf16")):
        name = attention + (f" {amp}" if amp else "")
        res = measure(
            {
                "kind": "breakdown",
                "attention": attention,
                "amp": amp,
                "batch": 16,
                "points": 1024,
                "reps": args.reps,
                "device": args.device,
            },
            args.threads,
        )
        data[name] = res
        if "error" in res:
            rows.append([name, res["error"], "", "", "", "", "", ""])
            continue
        step = res["step"]
        rows.append(
            [
                name,
                fmt_sec(step),
                f"{16 / step:.1f}",
                share(res.get("step_flops"), step, ceiling[amp or "float32"]),
                f"{res['sampling'] / step:.0%}",
                f"{res['attention'] / step:.0%}",
                f"{res['rest'] / step:.0%}",
                f"{fmt_sec(res['data'])} ({res['data'] / step:.0%})",
            ]
        )
        op_rows.append(
            [name]
            + [f"{res['op_shares'].get(label, 0.0):.0%}" for label in labels]
            + [share(res["matmul_flops"], res["matmul_seconds"], ceiling[amp or "float32"])]
        )
    rep.data["breakdown"] = data
    rep.add(
        "## Where a classifier training step goes (batch 16 x 1024)\n\n"
        + table(
            [
                "attention",
                "step",
                "clouds/s",
                "step GFLOP/s (of ceiling)",
                "sampling + grouping",
                "attention (fwd+bwd)",
                "rest",
                "data path per batch (share of step)",
            ],
            rows,
        )
        + "\n\nBy operator class (profiler self time, share of the profiled step):\n\n"
        + table(["attention", *labels, "matrix products GFLOP/s (of ceiling)"], op_rows)
    )
