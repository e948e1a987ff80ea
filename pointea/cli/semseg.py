"""``pointea-semseg``: train and evaluate whole-room semantic segmentation (S3DIS)."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from ..engine.semseg_train import SemSegConfig, report_lines, train_semseg
from ..errors import PointeaError

_HELP = {
    "data_root": "folder holding Stanford3dDataset_v1.2_Aligned_Version/",
    "output_dir": "run folder (config.json, metrics.jsonl, checkpoints/, test_metrics.json)",
    "synthetic": "write procedural rooms in the S3DIS layout into --data-root first",
    "model": "registered semseg model (pct_semseg, pct_semseg_tiny)",
    "attention": "external (exact whole-room inference) or self (baseline)",
    "test_area": "held-out area: 5 is the Area-5 protocol, 1..6 in turn is 6-fold CV",
    "val_fraction": "share of training-area rooms used for selection (never the test area)",
    "num_points": "points sampled from a room per training sample",
    "block_vote": "also evaluate the test area with 1 m blocks and voting",
    "bf16": "train under bfloat16 autocast",
    "resume": "continue the run in --output-dir from checkpoints/last.pt",
}


def build_parser() -> argparse.ArgumentParser:
    """The parser, derived from :class:`SemSegConfig`'s fields and defaults."""
    p = argparse.ArgumentParser(prog="pointea-semseg", description=__doc__)
    for f in dataclasses.fields(SemSegConfig):
        flag = "--" + f.name.replace("_", "-")
        help_ = _HELP.get(f.name, "") + f" (default: {f.default})"
        if f.type in ("bool", bool):
            p.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_
            )
        else:
            kind = {"int": int, "float": float, "str": str}[str(f.type)]
            p.add_argument(flag, type=kind, default=f.default, help=help_)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = SemSegConfig(**vars(args))
    try:
        report = train_semseg(cfg)
    except PointeaError as exc:
        print(f"pointea-semseg: error: {exc}", file=sys.stderr)
        return 2
    for line in report_lines(report):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
