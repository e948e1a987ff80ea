"""The measuring stages of scripts/device_check.sh, one per call.

    python scripts/device_probe.py STAGE --results FILE [--device cuda|cpu] [--small]

Stages: ``env`` (versions, devices, which sampling kernels run), ``ceilings`` (bf16
8192^3 matrix product timed with CUDA events, device copy bandwidth), ``correctness``
(FPS, kNN, an external-attention layer and a ``pct_cls_tiny`` forward/backward on the
device against the CPU in float64), ``speed`` (``pct_cls`` training at 32 x 1024 in bf16,
clouds/s, with pure-torch sampling and, when it has CUDA kernels, torch_cluster's).

pointea is imported from the checkout (``PYTHONPATH``); nothing here needs torch_cluster.
Every measurement is appended to ``--results`` (one JSON object a line) as soon as it is
known, so a stage stopped by its time limit still leaves what it measured. The last line
printed is ``summary: ...``, the stage's entry in device_check.sh's table.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

NO_CUDA = "skipped: no CUDA"


class Results:
    """Appends ``{"stage", "key", "value"}`` lines to a file as they are measured."""

    def __init__(self, path: Path, stage: str) -> None:
        self.path, self.stage = path, stage
        self.values: dict[str, object] = {}

    def put(self, key: str, value: object) -> object:
        self.values[key] = value
        with self.path.open("a") as f:
            f.write(json.dumps({"stage": self.stage, "key": key, "value": value}) + "\n")
        print(f"{key}: {value}", flush=True)
        return value


def _cluster_cuda() -> bool:
    """Whether torch_cluster imports and has CUDA kernels."""
    try:
        import torch_cluster  # noqa: F401
    except ImportError:
        return False
    return int(torch.ops.torch_cluster.cuda_version()) != -1


def cuda_timed(fn: Callable[[], object], reps: int, warmup: int = 2) -> float:
    """Mean seconds of ``fn`` on the current CUDA device (the benchmark's CUDA-event timer)."""
    from pointea.bench.harness import cuda_event_seconds

    return cuda_event_seconds(fn, reps, warmup)


def wall_timed(fn: Callable[[], object], reps: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


# --- stages ------------------------------------------------------------------------------
def stage_env(res: Results, device: torch.device, small: bool) -> str:
    import pointea
    from pointea.ops import sampling_kernel

    res.put("python", f"{platform.python_version()} ({sys.executable})")
    res.put("torch", f"{torch.__version__} (CUDA {torch.version.cuda})")
    try:
        import torch_geometric

        res.put("torch_geometric", torch_geometric.__version__)
    except ImportError:
        res.put("torch_geometric", None)
    res.put("pointea", f"{pointea.__version__} ({Path(pointea.__file__).parent})")
    res.put("nvcc", shutil.which("nvcc"))
    cuda = torch.cuda.is_available()
    res.put("cuda_available", cuda)
    if cuda:
        props = torch.cuda.get_device_properties(0)
        res.put(
            "gpu",
            f"{props.name}, {props.multi_processor_count} SMs, "
            f"{props.total_memory / 2**30:.0f} GiB, capability {props.major}.{props.minor}",
        )
        res.put("gpu_count", torch.cuda.device_count())
    try:
        import torch_cluster

        res.put("torch_cluster", torch_cluster.__version__)
    except ImportError:
        res.put("torch_cluster", None)
    kernel = res.put("sampling_kernel", sampling_kernel(device))
    extras = []
    for name in ("trimesh", "plyfile", "open3d", "plotly"):
        try:
            __import__(name)
            extras.append(name)
        except ImportError:
            pass
    res.put("optional_packages", extras)
    gpu = res.values.get("gpu", "no CUDA device")
    return f"torch {torch.__version__}; {gpu}; sampling: {kernel}"


def _matmul_rate(device: torch.device, size: int, dtype: torch.dtype) -> float:
    """FLOP/s of one ``size``^3 product (CUDA events on CUDA, wall clock on the CPU)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    if device.type == "cuda":
        sec = cuda_timed(lambda: a @ b, reps=10, warmup=3)
    else:
        sec = wall_timed(lambda: a @ b, reps=3)
    return 2 * size**3 / sec


def _copy_rate(device: torch.device, nbytes: int) -> float:
    """Bytes per second read plus written by a device-to-device copy."""
    src = torch.empty(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    return 2 * nbytes / cuda_timed(lambda: dst.copy_(src), reps=10, warmup=2)


def stage_ceilings(res: Results, device: torch.device, small: bool) -> str:
    if device.type != "cuda":
        rate = res.put("cpu_matmul_fp32_512_gflops", _matmul_rate(device, 512, torch.float32) / 1e9)
        return f"{NO_CUDA} (CPU fp32 512^3: {rate:.0f} GFLOP/s)"
    tflops = res.put("matmul_bf16_8192_tflops", _matmul_rate(device, 8192, torch.bfloat16) / 1e12)
    bw = res.put("copy_tb_per_s_read_plus_write", _copy_rate(device, 2**30) / 1e12)
    return f"bf16 8192^3: {tflops:.0f} TFLOP/s; copy: {bw:.2f} TB/s (read + write)"


def _max_rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    return float((a.double().cpu() - ref).abs().max() / ref.abs().max().clamp(min=1e-30))


def stage_correctness(res: Results, device: torch.device, small: bool) -> str:
    from pointea import pure_sampling
    from pointea.models import create_model
    from pointea.nn.external_attention import ExternalAttention
    from pointea.ops import sampling_backend

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    g = torch.Generator().manual_seed(0)
    clouds, points = (4, 256) if small else (16, 1024)
    pos = torch.rand(clouds * points, 3, generator=g)
    sizes = torch.full((clouds,), points)
    failures = []

    # FPS: the device against the CPU in float64 (same rule, exact arithmetic)
    got = pure_sampling.fps(pos.to(device), sizes.to(device), points // 2, uniform=points)
    ref = pure_sampling.fps(pos.double(), sizes, points // 2, uniform=points)
    share = res.put("fps_share_equal_float64", float((got.cpu() == ref).float().mean()))
    if share < 0.99:
        failures.append("FPS")
    # kNN: distances of the k chosen neighbours against float64's
    centres = pos[ref]
    csizes = torch.full((clouds,), points // 2)
    k = 32
    edges = pure_sampling.knn(
        pos.to(device), sizes.to(device), centres.to(device), csizes.to(device), k, points
    ).cpu()
    ref_edges = pure_sampling.knn(pos.double(), sizes, centres.double(), csizes, k, points)
    pd = pos.double()
    d_got = ((pd[edges[1]] - pd[ref[edges[0]]]) ** 2).sum(-1)
    d_ref = ((pd[ref_edges[1]] - pd[ref[ref_edges[0]]]) ** 2).sum(-1)
    knn_err = res.put("knn_max_abs_distance_diff", float((d_got - d_ref).abs().max()))
    res.put("knn_share_equal_float64", float((edges[1] == ref_edges[1]).float().mean()))
    if knn_err > 1e-5:
        failures.append("kNN")

    # an external-attention layer: forward and backward, float32 on the device vs float64
    torch.manual_seed(0)
    layer = ExternalAttention(64)
    x = torch.randn(clouds * points, 64, generator=g)
    batch = torch.arange(clouds).repeat_interleave(points)
    ref_layer = layer.double()
    x64 = x.double().requires_grad_()
    ref_layer(x64, batch).square().sum().backward()
    dev_layer = ExternalAttention(64).to(device)
    dev_layer.load_state_dict({k: v.float() for k, v in ref_layer.state_dict().items()})
    xd = x.to(device).requires_grad_()
    out = dev_layer(xd, batch.to(device))
    ref_out = ref_layer(x.double(), batch).detach()
    out.square().sum().backward()
    ea_f = res.put("ea_forward_max_rel", _max_rel(out.detach(), ref_out))
    ea_b = res.put("ea_input_grad_max_rel", _max_rel(xd.grad, x64.grad))
    if max(ea_f, ea_b) > 1e-4:
        failures.append("EA layer")

    # pct_cls_tiny: logits and gradients, same sampling (pure torch) on both sides
    torch.manual_seed(0)
    model = create_model("pct_cls_tiny", num_classes=10).train()
    target = torch.randint(0, 10, (clouds,), generator=g)
    with sampling_backend("torch"):
        model64 = model.double()
        logits64 = model64(None, pos.double(), batch)
        torch.nn.functional.cross_entropy(logits64, target).backward()
        grads64 = {n: p.grad.clone() for n, p in model64.named_parameters() if p.grad is not None}
        torch.manual_seed(0)
        model32 = create_model("pct_cls_tiny", num_classes=10).to(device).train()
        model32.load_state_dict({k: v.to(device) for k, v in model64.state_dict().items()})
        model32.float()
        logits = model32(None, pos.to(device), batch.to(device))
        torch.nn.functional.cross_entropy(logits, target.to(device)).backward()
    m_f = res.put("model_logits_max_rel", _max_rel(logits.detach(), logits64.detach()))
    # every parameter's gradient error against the largest reference gradient
    pairs = [(p.grad, grads64[n]) for n, p in model32.named_parameters() if n in grads64]
    scale = max(float(r.abs().max()) for _, r in pairs)
    worst = max(float((a.double().cpu() - r).abs().max()) for a, r in pairs) / scale
    m_b = res.put("model_grads_max_rel", worst)
    if m_f > 1e-3 or m_b > 1e-2:
        failures.append("model")
    verdict = "FAILED: " + ", ".join(failures) if failures else "ok"
    return (
        f"{verdict} on {device.type} vs CPU float64: FPS {share:.1%} equal, kNN dist "
        f"{knn_err:.1g}, EA {max(ea_f, ea_b):.1g}, model {m_f:.1g}/{m_b:.1g}"
    )


def _train_speed(
    device: torch.device, clouds: int, points: int, steps: int, ahead: bool = False
) -> float:
    """Clouds per second of ``pct_cls`` training steps in bf16 autocast on ``device``;
    ``ahead``: FPS and kNN computed per cloud beforehand (as the loader's workers do)."""
    from torch_geometric.data import Batch, Data

    from pointea.models import create_model
    from pointea.nn.sampling_plan import plan_of, sampling_transform
    from pointea.ops import input_checks

    torch.manual_seed(0)
    name = "pct_cls" if device.type == "cuda" else "pct_cls_tiny"
    model = create_model(name, num_classes=40).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    cpu_pos = torch.rand(clouds * points, 3)
    samples = [Data(pos=cpu_pos[i * points : (i + 1) * points]) for i in range(clouds)]
    if ahead:
        plan = sampling_transform(model)
        samples = [plan(s) for s in samples]
    data = Batch.from_data_list(samples).to(device)
    kw = {"sampling": plan_of(data), "points_per_cloud": points} if ahead else {}
    pos, batch = data.pos, data.batch
    target = torch.randint(0, 40, (clouds,), device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16), input_checks(False):
            loss = torch.nn.functional.cross_entropy(model(None, pos, batch, **kw), target)
        loss.backward()
        opt.step()

    if device.type == "cuda":
        sec = cuda_timed(step, reps=steps, warmup=3)
    else:
        sec = wall_timed(step, reps=steps)
    return clouds / sec


def stage_speed(res: Results, device: torch.device, small: bool) -> str:
    from pointea.ops import sampling_backend

    if device.type != "cuda":
        with sampling_backend("torch"):
            rate = res.put("cpu_rehearsal_clouds_per_s_2x256", _train_speed(device, 2, 256, 1))
            res.put("cpu_rehearsal_ahead_clouds_per_s", _train_speed(device, 2, 256, 1, True))
        return f"{NO_CUDA} (code path run on the CPU, pct_cls_tiny 2 x 256: {rate:.1f} clouds/s)"
    clouds, points, steps = (8, 512, 5) if small else (32, 1024, 20)
    parts = []
    backends = ["torch"] + (["cluster"] if _cluster_cuda() else [])
    for backend in backends:
        with sampling_backend(backend):
            rate = res.put(
                f"train_bf16_{clouds}x{points}_clouds_per_s_{backend}",
                _train_speed(device, clouds, points, steps),
            )
        parts.append(f"{backend} sampling {rate:,.0f}")
    rate = res.put(
        f"train_bf16_{clouds}x{points}_clouds_per_s_sampled_ahead",
        _train_speed(device, clouds, points, steps, ahead=True),
    )
    parts.append(f"sampling computed ahead {rate:,.0f}")
    if len(backends) == 1:
        parts.append("torch_cluster: no CUDA kernels")
    return f"pct_cls bf16 {clouds} x {points}, clouds/s: " + ", ".join(parts)


STAGES = {
    "env": stage_env,
    "ceilings": stage_ceilings,
    "correctness": stage_correctness,
    "speed": stage_speed,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("stage", choices=sorted(STAGES))
    p.add_argument("--results", type=Path, required=True, help="JSON lines, appended")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--small", action="store_true", help="smaller problems (a rehearsal)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    res = Results(args.results, args.stage)
    try:
        line = STAGES[args.stage](res, device, args.small)
    except Exception as exc:  # the table says what broke; the log has the traceback
        import traceback

        traceback.print_exc()
        print(f"summary: FAILED: {type(exc).__name__}: {str(exc)[:160]}", flush=True)
        return 1
    print(f"summary: {line}", flush=True)
    return 1 if line.startswith("FAILED") else 0


if __name__ == "__main__":
    raise SystemExit(main())
