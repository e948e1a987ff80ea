"""Streaming segmentation variants side by side in ONE process (ratios within one run).

    python scripts/stream_side_by_side.py POINTS ROUNDS CHUNK:SPILL ...
    python scripts/stream_side_by_side.py 65536 1 16384:0 4096:0 2048:0 4096:1

``pct_seg`` (random weights), float32, a random cloud of POINTS points, the head-term
cache holding half of them (1 GiB for 2^20 points, the default). Each line: seconds,
FLOPs (counted once per spill setting on 8,192 points and scaled), achieved GFLOP/s,
the matrix-product ceiling measured just before it, and the same per pass.
"""

import resource
import sys
import time

import torch

from pointea.bench.harness import flop_counter
from pointea.models import create_model
from pointea.models.streaming import segment_large

n, rounds = int(sys.argv[1]), int(sys.argv[2])
variants = [tuple(v.split(":")) for v in sys.argv[3:]]
torch.manual_seed(0)
model = create_model("pct_seg").eval()
pos = torch.rand(n, 3) * 2 - 1
cache = 2**30 * n // 2**20  # half the points cached, like 1 GiB for 2^20
a = torch.randn(2048, 2048)
b = torch.randn(2048, 2048)


def ceil():
    t = time.perf_counter()
    [a @ b for _ in range(3)]
    return 3 * 2 * 2048**3 / (time.perf_counter() - t) / 1e9


_memo = {}


def flops(chunk, spill):
    # FLOPs per point do not depend on the chunk size: one count per spill setting
    if spill in _memo:
        return _memo[spill]
    chunk = 2048
    n0 = min(n, 8192)
    st = {"flop_counter": flop_counter()}
    with st["flop_counter"]:
        segment_large(
            model,
            pos[:n0],
            0,
            chunk_size=min(chunk, n0),
            cache_bytes=cache * n0 // n,
            spill=spill,
            stats=st,
        )
    _memo[spill] = {k: v * n / n0 for k, v in st["flops"].items()}
    return _memo[spill]


fl = {v: flops(int(v[0]), v[1] == "1") for v in variants}
ref = None
for r in range(rounds):
    for v in variants:
        chunk, spill = int(v[0]), v[1] == "1"
        c = ceil()
        st = {}
        t = time.perf_counter()
        out = segment_large(
            model, pos, 0, chunk_size=chunk, cache_bytes=cache, spill=spill, stats=st
        )
        sec = time.perf_counter() - t
        if ref is None:
            ref = out
        diff = (out - ref).abs().max().item()
        tot = sum(fl[v].values())
        passes = " ".join(
            f"{k} {s:.2f}s/{fl[v][k] / s / 1e9:.0f}GF" for k, s in st["seconds"].items()
        )
        print(
            f"round {r} chunk {chunk:6d} spill {int(spill)}: {sec:7.2f} s  {tot / 1e12:.3f} TFLOP "
            f"{tot / sec / 1e9:6.1f} GF/s  ceiling-now {c:5.1f} ({tot / sec / 1e9 / c:.0%})  "
            f"[{passes}]  maxdiff {diff:.1e}  "
            f"maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB",
            flush=True,
        )
