"""Semantic segmentation metrics of scenes: OA, mAcc, mIoU and per-class IoU.

All four come from one confusion matrix accumulated over every evaluated point of every
room (S3DIS convention, as in PointNet's and DGCNN's evaluation scripts): the class IoU
is ``TP / (TP + FP + FN)`` over the whole split, not a mean of per-room IoUs. Classes
absent from both truth and prediction have IoU ``None`` and are left out of the means.
The matrix itself is part of the result (``"confusion"``, rows = truth), so that runs can
be pooled afterwards.

**6-fold cross-validation** (S3DIS's second protocol): six runs, each testing one area
(``--test-area 1`` .. ``6``). The published 6-fold OA / mAcc / mIoU are those of the six
test areas' points taken together, i.e. of the sum of the six confusion matrices (PointNet's
``sem_seg/eval_iou_accuracy.py`` accumulates its counts over all six areas' prediction
files), not the mean of the six runs' numbers: :func:`pool_confusions`, :func:`pool_runs`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import DataError, InputError
from .classification import confusion_matrix

__all__ = [
    "SemSegMeter",
    "majority_baseline",
    "pool_confusions",
    "pool_runs",
    "semseg_metrics",
    "semseg_metrics_from_confusion",
]


def semseg_metrics_from_confusion(cm: Tensor, class_names: Sequence[str] | None = None) -> dict:
    """OA, mAcc, mIoU and per-class IoU / accuracy from a ``(C, C)`` confusion matrix
    (rows = truth, columns = prediction)."""
    cm = cm.double()
    tp = cm.diagonal()
    support = cm.sum(dim=1)
    predicted = cm.sum(dim=0)
    union = support + predicted - tp
    total = float(cm.sum())
    acc = [float(t / s) if s > 0 else None for t, s in zip(tp, support, strict=True)]
    iou = [float(t / u) if u > 0 else None for t, u in zip(tp, union, strict=True)]
    acc_present = [a for a, s in zip(acc, support, strict=True) if s > 0]
    iou_present = [v for v in iou if v is not None]
    out = {
        "overall_accuracy": float(tp.sum() / total) if total > 0 else None,
        "mean_class_accuracy": sum(acc_present) / len(acc_present) if acc_present else None,
        "mean_iou": sum(iou_present) / len(iou_present) if iou_present else None,
        "per_class_iou": iou,
        "per_class_accuracy": acc,
        "num_points": int(total),
        "confusion": cm.round().long().tolist(),
    }
    if class_names is not None:
        out["class_names"] = list(class_names)
    return out


def semseg_metrics(
    pred: Tensor, target: Tensor, num_classes: int, class_names: Sequence[str] | None = None
) -> dict:
    """Metrics of one set of points: ``pred`` class ids ``(N,)`` or logits ``(N, C)``."""
    return semseg_metrics_from_confusion(confusion_matrix(pred, target, num_classes), class_names)


def majority_baseline(train_counts, test_counts, class_names: Sequence[str] | None = None) -> dict:
    """Metrics of predicting the training points' most frequent class everywhere.

    Args:
        train_counts / test_counts: points per class ``(C,)`` of the two splits.
    """
    train_counts = torch.as_tensor(train_counts)
    test_counts = torch.as_tensor(test_counts, dtype=torch.long)
    c = test_counts.numel()
    majority = int(train_counts.argmax())
    cm = torch.zeros(c, c, dtype=torch.long)
    cm[:, majority] = test_counts
    out = semseg_metrics_from_confusion(cm, class_names)
    out["class"] = class_names[majority] if class_names is not None else majority
    return out


class SemSegMeter:
    """Accumulates the confusion matrix over rooms; :meth:`state` / :meth:`load_state`
    let a distributed run sum it across processes."""

    def __init__(self, num_classes: int, class_names: Sequence[str] | None = None) -> None:
        self.num_classes = num_classes
        self.class_names = class_names
        self.cm = torch.zeros(num_classes, num_classes, dtype=torch.long)

    def update(self, pred: Tensor, target: Tensor) -> None:
        self.cm += confusion_matrix(pred.detach(), target.detach(), self.num_classes).cpu()

    def state(self) -> Tensor:
        return self.cm.clone()

    def load_state(self, state: Tensor) -> None:
        self.cm = state.to(torch.long).cpu().clone()

    def compute(self) -> dict:
        return semseg_metrics_from_confusion(self.cm, self.class_names)

    def __repr__(self) -> str:
        return f"SemSegMeter(num_classes={self.num_classes}, points={int(self.cm.sum())})"


def pool_confusions(
    confusions: Sequence[Any], class_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """The metrics of several test sets' points taken together: the sum of their
    ``(C, C)`` confusion matrices (rows = truth), scored once."""
    if not confusions:
        raise InputError("pool_confusions: no confusion matrices given")
    mats = [torch.as_tensor(c, dtype=torch.long) for c in confusions]
    shape = mats[0].shape
    for i, m in enumerate(mats):
        if m.dim() != 2 or m.shape[0] != m.shape[1] or m.shape != shape:
            raise InputError(
                f"confusion {i}: shape {tuple(m.shape)}, expected a square matrix like "
                f"the first, {tuple(shape)}"
            )
        if bool((m < 0).any()):
            raise InputError(f"confusion {i}: holds negative counts")
    return semseg_metrics_from_confusion(torch.stack(mats).sum(0), class_names)


def pool_runs(run_dirs: Sequence[str | os.PathLike]) -> dict[str, Any]:
    """The 6-fold numbers of S3DIS from the six runs of ``pointea-semseg --test-area k``.

    Reads each run's ``test_metrics.json`` (its ``confusion`` over every point of its
    test area) and ``config.json`` (its ``test_area``), and scores the sum of the
    confusion matrices (:func:`pool_confusions`). The test areas must differ; fewer than
    six runs pool what is there (``"test_areas"`` says which).

    Returns:
        the metrics of :func:`semseg_metrics_from_confusion` plus ``"runs"`` (the folders),
        ``"test_areas"`` and ``"per_run"`` (each run's own OA / mAcc / mIoU).
    """
    if not run_dirs:
        raise InputError("pool_runs: no run folders given")
    confusions, areas, per_run, names = [], [], [], None
    for run in map(Path, run_dirs):
        path = run / "test_metrics.json"
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            raise DataError(f"{path}: missing (is {run} a finished pointea-semseg run?)") from None
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: unreadable ({exc})") from exc
        if not isinstance(record, dict) or "confusion" not in record:
            raise DataError(
                f"{path}: holds no 'confusion' field (the test area's confusion matrix); "
                f"evaluate the run's checkpoint again with pointea-eval to write one"
            )
        area = None
        with contextlib.suppress(OSError, ValueError, AttributeError):
            area = json.loads((run / "config.json").read_text()).get("test_area")
        if area is not None and area in areas:
            raise DataError(f"{run}: tests Area {area}, as another of the pooled runs does")
        run_names = record.get("class_names")
        if names is not None and run_names is not None and run_names != names:
            raise DataError(f"{path}: class names differ from the first run's")
        names = names or run_names
        confusions.append(record["confusion"])
        areas.append(area)
        per_run.append(
            {
                "run": str(run),
                "test_area": area,
                **{
                    k: record.get(k)
                    for k in ("overall_accuracy", "mean_class_accuracy", "mean_iou")
                },
            }
        )
    try:
        out = pool_confusions(confusions, names)
    except InputError as exc:
        raise DataError(f"{', '.join(map(str, run_dirs))}: {exc}") from exc
    out.update(runs=[str(r) for r in run_dirs], test_areas=areas, per_run=per_run)
    return out


def pool_main(argv: Sequence[str], prog: str = "pointea-eval") -> int:
    """``pointea-eval --pool RUN... [--output FILE]``: print (and save) the pooled 6-fold
    metrics of :func:`pool_runs`; returns the exit status."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog=f"{prog} --pool", allow_abbrev=False)
    p.add_argument("--pool", nargs="+", required=True, metavar="RUN", help="run folders")
    p.add_argument("--output", default=None, help="also write the pooled metrics as JSON")
    args = p.parse_args(list(argv))
    try:
        out = pool_runs(args.pool)
        if args.output is not None:
            from ..files import atomic_write_text

            try:
                atomic_write_text(Path(args.output), json.dumps(out, indent=2) + "\n")
            except OSError as exc:
                raise InputError(f"--output {args.output}: {exc.strerror or exc}") from exc
    except (DataError, InputError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    for r in out["per_run"]:
        print(
            f"  Area {r['test_area']}: OA {_pct(r['overall_accuracy'])}, "
            f"mAcc {_pct(r['mean_class_accuracy'])}, mIoU {_pct(r['mean_iou'])}  ({r['run']})"
        )
    areas = ", ".join(str(a) for a in out["test_areas"])
    print(
        f"pooled over {len(out['runs'])} runs (test areas {areas}; {out['num_points']:,} "
        f"points): OA {_pct(out['overall_accuracy'])}, mAcc "
        f"{_pct(out['mean_class_accuracy'])}, mIoU {_pct(out['mean_iou'])}"
    )
    names = out.get("class_names") or [str(i) for i in range(len(out["per_class_iou"]))]
    print(
        "  IoU: "
        + ", ".join(f"{n} {_pct(v)}" for n, v in zip(names, out["per_class_iou"], strict=False))
    )
    if args.output is not None:
        print(f"written: {args.output}")
    return 0


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f} %"
