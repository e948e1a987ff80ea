"""The benchmark's common harness: child processes, devices, timing, FLOPs, tables.

Every measurement runs in a fresh child process (``python -m pointea.bench.run
--child SPEC``), so its peak memory is its own. A *child* is a function ``spec -> dict``
registered under a ``kind`` with :func:`child`; a *section* is a function
``(rep: Report, args) -> None`` registered under a name with :func:`section` (or found by
its name ``section_<name>`` in one of the modules :mod:`pointea.bench.run` loads). The
parent side calls :func:`measure` with a spec whose ``"kind"`` names the child.

Devices: a spec's ``"device"`` (``"cpu"`` unless given) and ``"amp"`` (``None``,
``"bf16"`` or ``"fp16"``) select where and in which autocast precision the child runs.
On CUDA every timing is bracketed by ``torch.cuda.synchronize()`` and memory is
``torch.cuda.max_memory_allocated`` above the allocation at the start; on the CPU it is
the process's peak resident size above the resident size at the start.
"""

from __future__ import annotations

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

__all__ = [
    "CHILDREN",
    "SECTIONS",
    "Report",
    "autocast",
    "ceilings",
    "child",
    "cuda_event_seconds",
    "clouds",
    "count_flops",
    "flop_counter",
    "fmt_bytes",
    "fmt_flops",
    "fmt_sec",
    "machine_info",
    "measure",
    "section",
    "share",
    "sync",
    "table",
    "timed",
]

CHILDREN: dict[str, Callable[[dict], dict]] = {}
SECTIONS: dict[str, Callable[[Report, Any], None]] = {}
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def child(kind: str) -> Callable:
    """Register ``fn(spec) -> dict`` as the child measurement ``kind``."""

    def register(fn: Callable[[dict], dict]) -> Callable[[dict], dict]:
        CHILDREN[kind] = fn
        return fn

    return register


def section(name: str) -> Callable:
    """Register ``fn(rep, args)`` as the benchmark section ``name``."""

    def register(fn: Callable) -> Callable:
        SECTIONS[name] = fn
        return fn

    return register


# --------------------------------------------------------------------------- child side
def sync(device: str | torch.device) -> None:
    """Wait for queued device work (a no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: str | torch.device, amp: str | None):
    """``torch.autocast`` for ``amp`` in ``(None, "bf16", "fp16")`` on ``device``'s type."""
    device_type = torch.device(device).type
    if amp is None:
        return torch.autocast(device_type, enabled=False)
    if amp not in AMP_DTYPES:
        raise ValueError(f"amp: expected one of {sorted(AMP_DTYPES)} or None, got {amp!r}")
    return torch.autocast(device_type, dtype=AMP_DTYPES[amp])


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    """This process's own peak resident size: ``VmHWM``. (``ru_maxrss`` is no use here:
    a child started by fork + exec inherits the parent's resident size as its maximum.)"""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak_rss() -> None:
    """Restart ``VmHWM`` from the current resident size (Linux; elsewhere a no-op)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


class _Memory:
    """Peak memory above the start: device allocations on CUDA, process RSS on the CPU."""

    def __init__(self, device: str | torch.device) -> None:
        self.cuda = torch.device(device).type == "cuda"
        if self.cuda:
            sync(device)
            torch.cuda.reset_peak_memory_stats(device)
            self.base = torch.cuda.memory_allocated(device)
        else:
            _reset_peak_rss()
            self.base = _rss_bytes()
        self.device = device

    def peak(self) -> int:
        if self.cuda:
            sync(self.device)
            return max(0, torch.cuda.max_memory_allocated(self.device) - self.base)
        return max(0, _peak_rss_bytes() - self.base)


def timed(
    fn: Callable[[], Any], reps: int, warmup: int = 1, device: str | torch.device = "cpu"
) -> tuple[float, int]:
    """Median seconds of ``fn`` over ``reps`` runs and the peak memory above the start."""
    memory = _Memory(device)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times), memory.peak()


def count_flops(fn: Callable[[], Any]) -> int:
    """Floating-point operations of one call of ``fn`` (``torch.utils.flop_counter``)."""
    counter = flop_counter()
    with counter:
        fn()
    return counter.get_total_flops()


def flop_counter():
    """A ``torch.utils.flop_counter.FlopCounterMode`` that also counts in-place ``addmm_``.

    Use as a context manager and read ``get_total_flops()`` as often as needed (a
    running total, e.g. at the boundaries of the passes of one call).
    """
    from torch.utils.flop_counter import FlopCounterMode

    # torch's counter knows addmm but not its in-place form, which pointea's layers use
    # to accumulate products (LBR.forward_parts): counted here with the same formula
    return FlopCounterMode(
        display=False, custom_mapping={torch.ops.aten.addmm_: _inplace_addmm_flops}
    )


def _inplace_addmm_flops(self_shape, a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * a_shape[0] * a_shape[1] * b_shape[1]


def clouds(batch: int, points: int, seed: int = 0, device: str | torch.device = "cpu"):
    """``batch`` random clouds of ``points`` points in ``[-1, 1]^3``: ``(pos, batch)``."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(batch * points, 3, generator=g) * 2 - 1
    return pos.to(device), torch.arange(batch, device=device).repeat_interleave(points)


#: square matrix-product size of the ceiling: 8192 on CUDA (a 4096^3 bf16 product takes
#: about 0.2 ms on an H100-class GPU, too short to time well), 4096 on the CPU
MATMUL_SIZE = {"cuda": 8192, "cpu": 4096}


def cuda_event_seconds(fn: Callable[[], Any], reps: int, warmup: int = 3) -> float:
    """Mean seconds of ``fn`` on the current CUDA device, timed with CUDA events."""
    for _ in range(warmup):
        fn()
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1000.0 / reps


@child("matmul")
def _child_matmul(spec: dict) -> dict:
    device = spec.get("device", "cpu")
    dtype = getattr(torch, spec["dtype"])
    cuda = torch.device(device).type == "cuda"
    size = spec.get("size", MATMUL_SIZE["cuda" if cuda else "cpu"])
    if cuda:
        a = torch.randn(size, size, device=device).to(dtype)
        b = torch.randn(size, size, device=device).to(dtype)
        sec = cuda_event_seconds(lambda: a @ b, max(spec["reps"], 10))
        return {"seconds": sec, "gflops": 2 * size**3 / sec / 1e9, "size": size}
    # a CPU without matrix units for the dtype (bf16 without AVX-512/AMX) is orders of
    # magnitude slower: probe, and shrink the matrices to keep one product near a second
    probe = torch.randn(512, 512, device=device).to(dtype)
    rate = 2 * 512**3 / timed(lambda: probe @ probe, 1, device=device)[0]
    while size > 512 and 2 * size**3 / rate > 1.0:
        size //= 2
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    sec, _ = timed(lambda: a @ b, spec["reps"], device=device)
    return {"seconds": sec, "gflops": 2 * size**3 / sec / 1e9, "size": size}


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


def ceilings(rep: Report, args) -> dict[str, float | None]:
    """Matrix-product GFLOP/s per precision on ``args.device``, measured once per run.

    Keys: ``"float32"``, ``"bf16"`` (and ``"fp16"`` on CUDA), the precisions a timing's
    share of the ceiling is taken against (see :func:`share`). The first call measures
    and prints the table; later calls return the same numbers.
    """
    if "matmul_ceiling" in rep.data:
        return {k: v.get("gflops") for k, v in rep.data["matmul_ceiling"].items()}
    dtypes = {"float32": "float32", "bf16": "bfloat16"}
    if torch.device(args.device).type == "cuda":
        dtypes["fp16"] = "float16"
    found = {
        name: measure(
            {"kind": "matmul", "dtype": dtype, "reps": 3, "device": args.device}, args.threads
        )
        for name, dtype in dtypes.items()
    }
    rep.data["matmul_ceiling"] = found
    rows = [
        [
            n,
            dtypes[n],
            str(c.get("size", "-")),
            _num(c["gflops"]) if "gflops" in c else c["error"],
        ]
        for n, c in found.items()
    ]
    rep.add(
        f"## Matrix-product ceiling (square products up to "
        f"{MATMUL_SIZE.get(torch.device(args.device).type, 4096)}, on {args.device}, this run)\n\n"
        + table(["precision", "dtype", "size", "GFLOP/s"], rows)
    )
    return {k: v.get("gflops") for k, v in found.items()}


def share(flops: float | None, seconds: float | None, ceiling: float | None) -> str:
    """``"GFLOP/s (x % of ceiling)"`` for ``flops`` done in ``seconds``, or ``"-"``."""
    if not flops or not seconds:
        return "-"
    achieved = flops / seconds / 1e9
    if not ceiling:
        return _num(achieved)
    return f"{_num(achieved)} ({achieved / ceiling:.0%})"


def _num(x: float) -> str:
    return f"{x:.0f}" if x >= 10 else f"{x:.2g}"


def machine_info(threads: int, device: str = "cpu") -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch_geometric

    from pointea import __version__

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    try:
        load = ", load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    except OSError:
        load = ""
    gpu = ""
    if torch.device(device).type == "cuda":
        gpu = f"\ndevice: {torch.cuda.get_device_name(device)}"
    return (
        f"machine: {cpu}, {os.cpu_count()} cores, {mem:.0f} GiB; threads used: {threads}"
        f"{load}{gpu}\n"
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"torch_geometric {torch_geometric.__version__}, pointea {__version__}"
    )


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def fmt_sec(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def fmt_flops(flops: float | None) -> str:
    if not flops:
        return "-"
    return f"{flops / 1e12:.2f} T" if flops >= 1e12 else f"{flops / 1e9:.1f} G"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table with padded columns."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    return "\n".join([line, sep, *body])


class Report:
    """Collects printed sections (``benchmark.md``) and raw numbers (``benchmark.json``)."""

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
