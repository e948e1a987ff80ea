"""The tasks' recipes (:attr:`pointea.tasks.Task.recipe`) as text: the lines of
``pointea-train --help`` and the markdown table of docs/TRAINING.md, both rendered from
the one table so they cannot disagree with it."""

from __future__ import annotations

from typing import Any

from ..tasks import TASKS

#: what the recipe's ``augment`` turns on (with point dropout when ``point_dropout`` > 0)
_AUGMENT = "scale U[2/3,3/2] + shift U[-0.2,0.2]"

_OPTIMIZER = {"sgd": "SGD, momentum 0.9", "adam": "Adam", "adamw": "AdamW"}


def _number(value: float) -> str:
    return f"{value:g}"


def _fields(recipe: dict[str, Any]) -> dict[str, str]:
    epochs = f"{recipe['epochs']}"
    if "steps_per_epoch" in recipe:
        epochs += f" x {recipe['steps_per_epoch']} steps"
    augment = _AUGMENT if recipe["augment"] else "none"
    if recipe["augment"] and recipe.get("point_dropout"):
        augment = f"point dropout (max {_number(recipe['point_dropout'])}) + {augment}"
    return {
        "optimizer": _OPTIMIZER[recipe["optimizer"]],
        "lr": f"{_number(recipe['lr'])}, cosine to lr/100",
        "weight decay": _number(recipe["weight_decay"]),
        "epochs": epochs,
        "batch": f"{recipe['batch_size']}",
        "points": f"{recipe['num_points']}",
        "label smoothing": _number(recipe["label_smoothing"]),
        "augmentation": augment,
    }


def recipe_markdown() -> str:
    """The recipe table as a markdown table, one row per task."""
    columns = ["task", *_fields(next(iter(TASKS.values())).recipe), "source"]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for name, task in TASKS.items():
        cells = [f"`{name}`", *_fields(task.recipe).values(), task.source]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def recipe_epilog() -> str:
    """The recipe lines of the training commands' ``--help`` (``%`` escaped for argparse)."""
    lines = ["recipe defaults (the one recipe table; sources in docs/REPRODUCING.md):"]
    for name, task in TASKS.items():
        text = ", ".join(f"{key} {value}" for key, value in _fields(task.recipe).items())
        text += f"; {task.source}"
        words, line = text.split(), f"  {name:<14}"
        for word in words:
            if len(line) + len(word) + 1 > 88:
                lines.append(line.rstrip())
                line = " " * 16
            line += word + " "
        lines.append(line.rstrip())
    return "\n".join(lines).replace("%", "%%") + "\n"
