"""``pointea-bench`` / ``python scripts/benchmark.py``: measure, print tables, plot.

Every number comes from this run, on the host it runs on; every comparison is a ratio of two
numbers measured in the same run, and every timing stands next to its FLOPs and its
share of the matrix-product ceiling measured in the same run. Each measurement runs in a
fresh child process (:mod:`pointea.bench.harness`), so its peak memory is its own.

Sections live in their own modules (``pointea/bench/<name>.py``) and register with
:func:`pointea.bench.harness.section`; a module listed in :data:`SECTION_MODULES` that
is absent is skipped, and a module may instead define ``section_<name>(rep, args)``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

import torch

from ..models.chunks import DEFAULT_CHUNK
from .harness import CHILDREN, SECTIONS, Report, machine_info, measure, table

__all__ = ["Report", "SECTION_MODULES", "build_parser", "load_sections", "main", "measure", "table"]

# in run order; each module registers its sections (and children) when imported
SECTION_MODULES = ("attention", "models", "sampling", "breakdown", "scaling", "readers", "scenes")


def load_sections() -> dict:
    """Import the section modules present; the registered sections, in run order."""
    for name in SECTION_MODULES:
        try:
            module = importlib.import_module(f"pointea.bench.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"pointea.bench.{name}":
                raise
            continue
        fn = getattr(module, f"section_{name}", None)
        if callable(fn) and name not in SECTIONS:
            SECTIONS[name] = fn
    return SECTIONS


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pointea-bench",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--sections",
        default="attention,models,breakdown,scaling",
        help="comma-separated sections to run, in order (see --list-sections)",
    )
    p.add_argument("--list-sections", action="store_true", help="print the sections and exit")
    p.add_argument("--quick", action="store_true", help="small sizes only (a few minutes)")
    p.add_argument("--reps", type=int, default=3, help="timed repetitions per measurement (median)")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1), help="torch threads")
    p.add_argument(
        "--device",
        default=_default_device(),
        help="where the models run: cpu, cuda, cuda:1, ... (cuda when available)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="models: add the EA classifier behind torch.compile (float32 and bf16) beside "
        "its eager rows (the first step compiles: minutes)",
    )
    p.add_argument(
        "--chunk",
        type=int,
        default=DEFAULT_CHUNK,
        help="chunk size of the streaming runs (default: segment_large's)",
    )
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
    parser = build_parser()
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sections = load_sections()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(CHILDREN[spec["kind"]](spec)))
        return 0
    if args.list_sections:
        print("\n".join(sections))
        return 0
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this torch sees no CUDA device")
    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(chosen) - set(sections)
    if unknown:
        print(f"pointea-bench: error: unknown sections {sorted(unknown)}", file=sys.stderr)
        return 2
    rep = Report(args.output_dir)
    rep.add("# pointea benchmark\n\n" + machine_info(args.threads, args.device))
    for name in chosen:
        sections[name](rep, args)
        rep.save()
    print(f"\nwrote {args.output_dir}/benchmark.md, benchmark.json and plots", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
