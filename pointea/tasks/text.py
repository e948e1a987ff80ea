"""Summary lines shared by the tasks' :meth:`~pointea.tasks.Task.metric_lines`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["headline_lines", "pct"]


def pct(value: Any) -> str:
    """``value`` (a fraction) as a right-aligned percentage, ``n/a`` when missing."""
    return f"{100 * value:6.2f} %" if isinstance(value, (int, float)) else "   n/a"


def headline_lines(
    metrics: dict[str, Any],
    headlines: Sequence[tuple[str, str]],
    per_key: str,
    per_label: str,
    max_items: int,
) -> list[str]:
    """The headline numbers (label, key) then the per-class table of ``per_key``, four
    to a line; more than ``max_items`` entries show the lowest ones, where the work is."""
    lines = [f"  {label:<20} {pct(metrics.get(key))}" for label, key in headlines]
    per = metrics.get(per_key)
    if not isinstance(per, dict) or not per or max_items <= 0:
        return lines
    items = [(k, v) for k, v in per.items() if v is not None]
    if len(items) > max_items:
        items = sorted(items, key=lambda kv: kv[1])[:max_items]
        per_label += f" (lowest {max_items})"
    lines.append(f"  {per_label}:")
    cells = [f"{name[:12]:>12} {100 * value:5.1f}" for name, value in items]
    lines += ["   " + "  ".join(cells[i : i + 4]) for i in range(0, len(cells), 4)]
    return lines
