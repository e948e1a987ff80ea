"""What a run prints: one line per epoch, and the one-screen summary at the end of a run
or an evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["format_epoch_line", "format_metrics", "format_summary"]


def _pct(value: Any) -> str:
    return f"{100 * value:6.2f} %" if isinstance(value, (int, float)) else "   n/a"


def format_metrics(metrics: dict[str, Any], kind: str, *, max_items: int = 16) -> list[str]:
    """Lines with the headline metrics and the per-class / per-category table."""
    lines: list[str] = []
    if kind == "semseg":
        return _scene_lines(metrics)
    if kind == "classification":
        lines.append(f"  overall accuracy     {_pct(metrics.get('overall_accuracy'))}")
        lines.append(f"  mean class accuracy  {_pct(metrics.get('mean_class_accuracy'))}")
        per = metrics.get("per_class_accuracy")
        label = "per-class accuracy"
    else:
        lines.append(f"  instance mIoU        {_pct(metrics.get('instance_miou'))}")
        lines.append(f"  class mIoU           {_pct(metrics.get('class_miou'))}")
        per = metrics.get("per_category_iou")
        label = "per-category IoU"
    if isinstance(per, dict) and per:
        items = [(k, v) for k, v in per.items() if v is not None]
        if len(items) > max_items:  # show the weakest, where the work is
            items = sorted(items, key=lambda kv: kv[1])[:max_items]
            label += f" (lowest {max_items})"
        lines.append(f"  {label}:")
        row = []
        for name, value in items:
            row.append(f"{name[:12]:>12} {100 * value:5.1f}")
            if len(row) == 4:
                lines.append("   " + "  ".join(row))
                row = []
        if row:
            lines.append("   " + "  ".join(row))
    return lines


def _scene_lines(metrics: dict[str, Any]) -> list[str]:
    """OA / mAcc / mIoU of the whole-room pass, block voting and the majority class."""
    lines = []
    for key, label in (
        (None, "whole rooms, exact"),
        ("block_vote", "1 m blocks + voting"),
        ("majority_baseline", "majority class"),
    ):
        m = metrics if key is None else metrics.get(key)
        if isinstance(m, dict):
            lines.append(
                f"  {label:<20} OA {_pct(m.get('overall_accuracy'))}  mAcc "
                f"{_pct(m.get('mean_class_accuracy'))}  mIoU {_pct(m.get('mean_iou'))}"
            )
    names, ious = metrics.get("class_names") or [], metrics.get("per_class_iou") or []
    cells = [
        f"{n[:10]:>10} {100 * v:5.1f}" for n, v in zip(names, ious, strict=False) if v is not None
    ]
    if cells:
        lines.append("  per-class IoU (whole rooms):")
        lines += ["   " + "  ".join(cells[i : i + 4]) for i in range(0, len(cells), 4)]
    return lines


def _selection_line(cfg: Any, test: dict[str, Any]) -> str:
    protocol = test.get("protocol", "validation")
    if protocol == "full-train":
        return (
            f"  protocol full-train: trained on every training shape, kept the last "
            f"epoch ({test.get('epoch')}); nothing selected"
        )
    return (
        f"  protocol {protocol}: best epoch {test.get('epoch')} on {test.get('selected_on')}: "
        f"{cfg.selection_metric} {_pct(test.get('val_' + cfg.selection_metric)).strip()}"
    )


def format_summary(
    cfg: Any, test: dict[str, Any], history: Sequence[dict[str, Any]], run: Any, seconds: float
) -> str:
    """The end-of-run summary: settings, best epoch, test numbers and written files."""
    bar = "=" * 72
    count = test.get("num_samples", test.get("num_shapes", test.get("num_rooms")))
    unit = {"classification": "clouds", "semseg": "rooms"}.get(cfg.kind, "shapes")
    lines = [
        bar,
        f"pointea run {run.path}",
        f"  task {cfg.task} ({cfg.kind}), model {cfg.model}, {cfg.attention} attention, "
        f"{cfg.epochs} epochs, batch {cfg.batch_size}, {cfg.num_points} points, "
        f"{cfg.optimizer} lr {cfg.lr:g}, seed {cfg.seed}"
        + (", synthetic data" if cfg.synthetic else ""),
        _selection_line(cfg, test),
        f"test split ({count} {unit}), best.pt:",
        *format_metrics(test, cfg.kind),
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
