"""What a run prints: one line per epoch, and the one-screen summary at the end of a run
or an evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..tasks import Task, as_task
from ..tasks.text import pct

__all__ = ["format_epoch_line", "format_metrics", "format_summary"]


def format_metrics(metrics: dict[str, Any], task: Task | str, *, max_items: int = 16) -> list[str]:
    """Lines with the headline metrics and the per-class / per-category table (the task's
    :meth:`~pointea.tasks.Task.metric_lines`)."""
    return as_task(task).metric_lines(metrics, max_items=max_items)


def _selection_line(cfg: Any, test: dict[str, Any]) -> str:
    protocol = test.get("protocol", "validation")
    if protocol == "full-train":
        return (
            f"  protocol full-train: trained on every training shape, kept the last "
            f"epoch ({test.get('epoch')}); nothing selected"
        )
    return (
        f"  protocol {protocol}: best epoch {test.get('epoch')} on {test.get('selected_on')}: "
        f"{cfg.selection_metric} {pct(test.get('val_' + cfg.selection_metric)).strip()}"
    )


def format_summary(
    cfg: Any, test: dict[str, Any], history: Sequence[dict[str, Any]], run: Any, seconds: float
) -> str:
    """The end-of-run summary: settings, best epoch, test numbers and written files."""
    bar = "=" * 72
    count = test.get("num_samples", test.get("num_shapes", test.get("num_rooms")))
    unit = cfg.spec.unit
    lines = [
        bar,
        f"pointea run {run.path}",
        f"  task {cfg.task} ({cfg.kind}), model {cfg.model}, {cfg.attention} attention, "
        f"{cfg.epochs} epochs, batch {cfg.batch_size}, {cfg.num_points} points, "
        f"{cfg.optimizer} lr {cfg.lr:g}, seed {cfg.seed}"
        + (", synthetic data" if cfg.synthetic else ""),
        _selection_line(cfg, test),
        f"test split ({count} {unit}), best.pt:",
        *format_metrics(test, cfg.spec),
        f"files: {run.test_metrics_path.name}, {run.metrics_path.name}, "
        f"{run.curves_path.name}, checkpoints/{{best,last}}.pt, {run.config_path.name}",
        f"time this session: {seconds / 60:.1f} min",
        bar,
    ]
    return "\n".join(lines)


def format_epoch_line(rec: dict[str, Any], epochs: int, metric: str, improved: bool) -> str:
    """One epoch's log line; ``*`` marks a new best on the selection metric."""
    val = rec.get(f"val_{metric}")
    val_txt = f"{100 * val:.2f}%" if isinstance(val, float) else "n/a"
    return (
        f"epoch {rec['epoch']:>3}/{epochs}  train loss {rec['train_loss']:.4f}  "
        f"train acc {100 * rec['train_accuracy']:.1f}%  val {metric} {val_txt}"
        f"{' *' if improved else ''}  lr {rec['lr']:.2e}  {rec['time_s']:.1f}s"
    )
