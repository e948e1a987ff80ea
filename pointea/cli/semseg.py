"""``pointea-semseg``: train and evaluate whole-room semantic segmentation (S3DIS).

A thin entry like ``pointea-seg``: the task ``s3dis`` of :func:`pointea.engine.train`,
with the same flags, run folder, resume, DDP (``torchrun -m pointea.cli.semseg``),
``--bf16`` and callbacks as the other trainers (``--help`` lists them). The test area is
segmented whole, every point in one exact pass; ``--block-vote`` adds the literature's
block-and-vote numbers beside them in ``test_metrics.json``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from .train import run_task

__all__ = ["main"]


def main(argv: Sequence[str] | None = None, *, callbacks: Sequence[Any] = ()) -> int:
    """``pointea-semseg``: S3DIS semantic segmentation of whole rooms."""
    return run_task(argv, "s3dis", callbacks)


if __name__ == "__main__":  # python -m pointea.cli.semseg (torchrun)
    sys.exit(main())
