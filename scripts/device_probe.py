"""GPU facts for scripts/device_check.sh, as one JSON file (argument: its path).

What only a GPU shows: which FPS/kNN kernels run on CUDA and whether they agree with the
CPU ones, a training step under fp16 and bf16 autocast, and how many times a training step
waits for the device (``torch.cuda.set_sync_debug_mode``), with and without input checks.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import torch


def _timed(fn, reps: int = 5) -> float:
    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / reps * 1000.0


def sampling(report: dict) -> None:
    from pointea.ops import (
        check_cloud,
        farthest_point_sample,
        knn_groups,
        sampling_backend,
        sampling_kernel,
    )

    g = torch.Generator().manual_seed(0)
    pos = torch.rand(16 * 1024, 3, generator=g)
    batch = torch.arange(16).repeat_interleave(1024)
    with sampling_backend("cluster"):
        ref, ref_layout = farthest_point_sample(pos, check_cloud(pos, batch), 512)
        ref_knn = knn_groups(pos, check_cloud(pos, batch), pos[ref], ref_layout, 32)
    cuda_pos, cuda_batch = pos.cuda(), batch.cuda()
    report["sampling_kernel_cuda_auto"] = sampling_kernel(cuda_pos.device)
    for backend in ("auto", "torch"):
        with sampling_backend(backend):
            layout = check_cloud(cuda_pos, cuda_batch)
            idx, clayout = farthest_point_sample(cuda_pos, layout, 512)
            edges = knn_groups(cuda_pos, layout, cuda_pos[idx], clayout, 32)
            report[f"fps_{backend}_equal_cpu"] = bool(torch.equal(idx.cpu(), ref))
            report[f"fps_{backend}_share_equal_cpu"] = float((idx.cpu() == ref).float().mean())
            same = bool(torch.equal(edges[1].cpu(), ref_knn[1]))
            report[f"knn_{backend}_equal_cpu_given_cpu_centres"] = (
                same if report[f"fps_{backend}_equal_cpu"] else None
            )
            report[f"fps_{backend}_ms_16x1024_to_512"] = _timed(
                lambda: farthest_point_sample(cuda_pos, layout, 512)  # noqa: B023
            )
            centres = cuda_pos[idx]
            report[f"knn_{backend}_ms_k32"] = _timed(
                lambda: knn_groups(cuda_pos, layout, centres, clayout, 32)  # noqa: B023
            )


def training(report: dict) -> None:
    from pointea.models import create_model
    from pointea.ops import input_checks

    model = create_model("pct_cls", num_classes=40).cuda().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    pos = torch.rand(16 * 1024, 3, device="cuda")
    batch = torch.arange(16, device="cuda").repeat_interleave(1024)
    target = torch.randint(0, 40, (16,), device="cuda")

    def step(dtype):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
            loss = torch.nn.functional.cross_entropy(model(pos, batch), target)
        loss.backward()
        opt.step()

    for name, dtype in (("float32", None), ("fp16", torch.float16), ("bf16", torch.bfloat16)):
        try:
            report[f"train_step_ms_{name}"] = _timed(lambda: step(dtype), reps=3)  # noqa: B023
        except Exception as exc:  # report, do not stop: the other precisions still count
            report[f"train_step_ms_{name}"] = f"FAILED: {type(exc).__name__}: {exc}"
    for checks in (True, False):
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                with input_checks(checks):
                    step(None)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        syncs = [w for w in seen if "synchroniz" in str(w.message)]
        report[f"syncs_per_step_input_checks_{checks}"] = len(syncs)
    report["max_memory_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20


def main(path: str) -> int:
    report: dict = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(0),
        "device_count": torch.cuda.device_count(),
    }
    try:
        import torch_cluster  # noqa: F401

        report["torch_cluster_cuda_version"] = int(torch.ops.torch_cluster.cuda_version())
    except ImportError:
        report["torch_cluster_cuda_version"] = None
    status = 0
    for part in (sampling, training):
        try:
            part(report)
        except Exception as exc:
            report[part.__name__ + "_error"] = f"{type(exc).__name__}: {exc}"
            status = 1
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report, indent=1))
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
