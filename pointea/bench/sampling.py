"""Section ``sampling``: the classifier's training step with its farthest point sampling
and kNN in the step, and with them computed ahead per cloud (what the data loader's
workers do, :mod:`pointea.nn.sampling_plan`), side by side in one run; what one worker
spends per cloud on the plan; and the graph breaks ``torch._dynamo.explain`` finds in
the forward pass of each (0 is what a CUDA graph needs to capture the step)."""

from __future__ import annotations

import time

import torch

from .harness import child, clouds, fmt_sec, measure, section, sync, table, timed

__all__ = ["section_sampling"]


def _setup(spec: dict):
    """Model, batch (with its plan when ``spec["plan"]``), targets and optimiser."""
    from torch_geometric.data import Batch, Data

    from pointea.models import create_model
    from pointea.nn.sampling_plan import plan_of, sampling_transform

    torch.manual_seed(0)
    device = spec.get("device", "cpu")
    model = create_model(spec["model"], attention="external").to(device).train()
    b, n = spec["batch"], spec["points"]
    pos, _ = clouds(b, n)
    samples = [Data(pos=pos[i * n : (i + 1) * n]) for i in range(b)]
    plan = sampling_transform(model)
    start = time.perf_counter()
    if spec["plan"]:
        samples = [plan(s) for s in samples]
    per_cloud = (time.perf_counter() - start) / b
    batch = Batch.from_data_list(samples).to(device)
    kw = {"sampling": plan_of(batch), "points_per_cloud": n} if spec["plan"] else {}
    target = torch.randint(0, 40, (b,), device=device)
    return model, batch, kw, target, per_cloud


@child("sampling_step")
def _child_sampling_step(spec: dict) -> dict:
    from pointea.ops import input_checks

    model, batch, kw, target, per_cloud = _setup(spec)
    device = spec.get("device", "cpu")
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def forward():
        return model(None, batch.pos, batch.batch, **kw)

    def step():
        opt.zero_grad(set_to_none=True)
        with input_checks(False):  # as the training loop runs it
            torch.nn.functional.cross_entropy(forward(), target).backward()
        opt.step()

    sec, peak = timed(step, spec["reps"], device=device)
    sync(device)
    explained = torch._dynamo.explain(forward)()
    torch._dynamo.reset()
    return {
        "seconds": sec,
        "peak_bytes": peak,
        "plan_seconds_per_cloud": per_cloud if spec["plan"] else None,
        "graph_breaks": int(explained.graph_break_count),
        "graphs": int(explained.graph_count),
    }


@section("sampling")
def section_sampling(rep, args) -> None:
    configs = [(16, 1024)] if args.quick else [(16, 1024), (32, 1024)]
    rows, data = [], []
    for batch, points in configs:
        base = {"kind": "sampling_step", "model": "pct_cls", "batch": batch, "points": points,
                "reps": args.reps, "device": args.device}  # fmt: skip
        inside = measure({**base, "plan": False}, args.threads)
        ahead = measure({**base, "plan": True}, args.threads)
        data.append({"batch": batch, "points": points, "in_step": inside, "ahead": ahead})
        for name, res in (("in the step", inside), ("ahead, per cloud", ahead)):
            if "seconds" not in res:
                rows.append([f"{batch}x{points}", name, res.get("error", "failed"), "", "", "", ""])
                continue
            ratio = inside["seconds"] / res["seconds"] if "seconds" in inside else None
            per_cloud = res.get("plan_seconds_per_cloud")
            rows.append(
                [
                    f"{batch}x{points}",
                    name,
                    fmt_sec(res["seconds"]),
                    f"{batch / res['seconds']:.1f}",
                    f"{ratio:.2f}x" if ratio else "-",
                    f"{1 / per_cloud:.0f}" if per_cloud else "-",
                    f"{res['graph_breaks']} ({res['graphs']} graphs)",
                ]
            )
    rep.data["sampling"] = data
    rep.add(
        "## Sampling: farthest point sampling and kNN in the training step, or computed "
        "ahead per cloud (data-loader workers)\n\n"
        "`pct_cls`, external attention, float32; the step with the plan excludes the "
        "plan's own cost, which the workers pay (last but one column: clouds one worker "
        "plans per second at the threads used). Graph breaks: "
        "`torch._dynamo.explain` on the forward pass.\n\n"
        + table(
            [
                "batch",
                "sampling",
                "train step",
                "train clouds/s",
                "speed-up",
                "clouds/s one worker plans",
                "graph breaks",
            ],
            rows,
        )
    )
