"""The tasks pointea trains and evaluates, one object per problem and dataset.

:data:`TASKS` maps each ``--task`` name to its :class:`Task`; :func:`get_task` looks one
up with a clear error. Adding a task or a dataset variant is one module (a :class:`Task`
subclass) and one line below (docs/ARCHITECTURE.md, "Adding a task").
"""

from __future__ import annotations

from ..errors import InputError
from .base import SCENE_ONLY_SETTINGS, Task, TaskData
from .parts import ShapeNetPart
from .scenes import S3DIS
from .shapes import ModelNet40, ScanObjectNN, ShapeClassification

__all__ = [
    "KINDS",
    "SCENE_ONLY_SETTINGS",
    "TASKS",
    "ModelNet40",
    "S3DIS",
    "ScanObjectNN",
    "ShapeClassification",
    "ShapeNetPart",
    "Task",
    "TaskData",
    "as_task",
    "get_task",
    "task_of_kind",
]

#: every task by its ``--task`` name, in the order the docs list them
TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        ModelNet40(),
        ScanObjectNN(),
        ShapeNetPart(),
        S3DIS(),
    )
}

#: the kinds of output (what a checkpoint's model predicts)
KINDS = ("classification", "segmentation", "semseg")


def get_task(name: str) -> Task:
    """The task called ``name`` (an :class:`~pointea.errors.InputError` listing the known
    ones otherwise)."""
    task = TASKS.get(name)
    if task is None:
        raise InputError(f"task {name!r} is not one of {sorted(TASKS)}")
    return task


def as_task(task: Task | str) -> Task:
    """``task`` itself, or the task of that name."""
    return get_task(task) if isinstance(task, str) else task


def task_of_kind(kind: str) -> Task:
    """The first registered task whose models predict ``kind`` (checkpoints that name
    only their kind are evaluated on it)."""
    for task in TASKS.values():
        if task.kind == kind:
            return task
    raise InputError(f"kind {kind!r} is not one of {list(KINDS)}")
