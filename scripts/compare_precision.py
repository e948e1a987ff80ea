"""Does bfloat16 autocast change accuracy? Train the same recipe in float32 and bfloat16.

Runs ``pointea-train`` once per seed and precision with everything else equal, then
prints each run's test accuracy, the mean and the spread per precision, and the
training time. The default is the README demo's recipe on the offline stand-in data
(no download); pass ``--data-root`` (and any other ``pointea-train`` option after
``--``) for real data.

Usage::

    python scripts/compare_precision.py                       # 3 seeds, demo recipe
    python scripts/compare_precision.py --seeds 0 1 2 3 4 -- --epochs 20
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEMO = [
    "--task", "modelnet40", "--model", "pct_cls_tiny", "--num-points", "512",
    "--epochs", "10", "--batch-size", "32",
]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--data-root", help="real dataset folder (default: the offline stand-in)")
    p.add_argument("--output-dir", type=Path, default=Path("runs/precision"))
    p.add_argument("extra", nargs="*", help="more pointea-train options (after --)")
    args = p.parse_args(argv)
    data = ["--data-root", args.data_root] if args.data_root else ["--synthetic"]
    train = Path(sys.executable).parent / "pointea-train"
    results: dict[str, list[tuple[int, float, float]]] = {"float32": [], "bfloat16": []}
    for seed in args.seeds:
        for precision, flag in (("float32", []), ("bfloat16", ["--bf16"])):
            out = args.output_dir / f"{precision}-seed{seed}"
            cmd = [str(train), *DEMO, *data, "--seed", str(seed), *flag, "--output-dir",
                   str(out), "--overwrite", "--no-progress", *args.extra]  # fmt: skip
            print(f"== {precision}, seed {seed}: {' '.join(cmd[1:])}", flush=True)
            start = time.perf_counter()
            proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                return proc.returncode
            seconds = time.perf_counter() - start
            acc = json.loads((out / "test_metrics.json").read_text())["overall_accuracy"]
            results[precision].append((seed, acc, seconds))
            print(f"   test accuracy {100 * acc:.1f} %, {seconds:.0f} s", flush=True)
    print("\n| precision | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean | time |")
    print("|---" * (len(args.seeds) + 3) + "|")
    for precision, runs in results.items():
        accs = [100 * a for _, a, _ in runs]
        cells = " | ".join(f"{a:.1f} %" for a in accs)
        mean = statistics.mean(accs)
        spread = f" ± {statistics.stdev(accs):.1f}" if len(accs) > 1 else ""
        total = sum(s for *_, s in runs)
        print(f"| {precision} | {cells} | {mean:.1f}{spread} % | {total:.0f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
