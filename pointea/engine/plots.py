"""Training-curve figure of a run (matplotlib, headless)."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..files import atomic_write

__all__ = ["plot_training_curves"]


def _series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for rec in history:
        value = rec.get(key)
        if isinstance(value, (int, float)):
            xs.append(int(rec["epoch"]))
            ys.append(float(value))
    return xs, ys


def plot_training_curves(
    history: Sequence[dict[str, Any]], path: str | os.PathLike, metric: str, title: str = ""
) -> Path:
    """Draw loss, ``metric`` (train and validation) and learning rate per epoch to a PNG.

    Args:
        history: the epoch records of ``metrics.jsonl``.
        path: where to write the PNG (atomically).
        metric: validation key to plot, e.g. ``"val_overall_accuracy"``.
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.6), layout="constrained")
    ax_loss, ax_metric, ax_lr = fig.subplots(1, 3)
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        xs, ys = _series(history, key)
        if xs:
            ax_loss.plot(xs, ys, marker="o", ms=3, label=label)
    ax_loss.set(title="loss", xlabel="epoch")
    ax_loss.legend()
    pretty = metric.replace("val_", "validation ").replace("_", " ").replace("miou", "mIoU")
    for key, label in (("train_accuracy", "train accuracy"), (metric, pretty)):
        xs, ys = _series(history, key)
        if xs:
            ax_metric.plot(xs, [100 * y for y in ys], marker="o", ms=3, label=label)
    ax_metric.set(title="accuracy / mIoU (%)", xlabel="epoch")
    ax_metric.legend()
    xs, ys = _series(history, "lr")
    if xs:
        ax_lr.plot(xs, ys, marker="o", ms=3)
    ax_lr.set(title="learning rate", xlabel="epoch")
    for ax in (ax_loss, ax_metric, ax_lr):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    data = buf.getvalue()
    return atomic_write(path, lambda f: f.write(data))
