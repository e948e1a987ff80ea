"""Saving and loading models: pretrained folders, training checkpoints, PCT imports.

A *pretrained folder* (``save_pretrained``) holds ``model.safetensors`` (weights, no
pickle, memory-mapped on load), ``config.json`` (registry name, architecture, task,
class names, metrics) and a generated model card ``README.md``. It needs none of the
training code's flags to load.

:func:`load_model` accepts any of: such a folder, a pointea training checkpoint
(``checkpoints/best.pt``), or a PCT_Pytorch ``model.t7``, and returns ``(model, info)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from ..errors import CheckpointError
from ..files import atomic_write
from ..serialization import safe_torch_load
from .pct_pytorch import from_pct_pytorch, is_pct_pytorch_state_dict
from .registry import create_model, list_models, model_kind

__all__ = [
    "save_pretrained",
    "load_pretrained",
    "load_model",
    "model_from_checkpoint",
    "validate_config",
    "check_unique_names",
]

PRETRAINED_FORMAT = "pointea-pretrained"
CHECKPOINT_FORMAT = "pointea-checkpoint"
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def _param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_pretrained(
    model: nn.Module,
    directory: str | os.PathLike,
    *,
    class_names: Sequence[str] | None = None,
    metrics: Mapping[str, Any] | None = None,
    dataset: str | None = None,
    command: str | None = None,
    num_points: int | None = None,
    task: str | None = None,
) -> Path:
    """Write ``model`` as a self-contained folder (safetensors weights + JSON config).

    Args:
        model: a model made by :func:`~pointea.models.create_model` (or imported).
        directory: the folder to create or update.
        class_names: names of the classes (classification) or categories (segmentation).
        metrics: e.g. the run's ``test_metrics.json``; shown in the model card.
        dataset: what it was trained on, for the model card.
        command: the command that trained it, for the model card.
        num_points: points per cloud the model was trained with.
        task: the task it was trained on (``--task``, e.g. ``modelnet40``), when known.
    """
    from safetensors.torch import save

    if not hasattr(model, "name") or not hasattr(model, "hparams"):
        raise CheckpointError("model: not built by pointea.models.create_model (no name/hparams)")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if class_names is None:
        class_names = getattr(model, "class_names", None)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    config = {
        "format": PRETRAINED_FORMAT,
        "format_version": 1,
        "model_name": model.name,
        "model_config": model.hparams,
        "kind": model_kind(model.name),
        "task": task,
        "class_names": list(class_names) if class_names is not None else None,
        "num_points": num_points,
        "num_parameters": _param_count(model),
        "metrics": dict(metrics) if metrics else {},
        "dataset": dataset,
        "command": command,
        "pointea_version": __version__,
        "torch_version": torch.__version__,
    }
    atomic_write(directory / WEIGHTS_NAME, lambda f: f.write(save(state, {"format": "pt"})))
    text = json.dumps(config, indent=2) + "\n"
    atomic_write(directory / CONFIG_NAME, lambda f: f.write(text.encode()))
    card = model_card(config)
    atomic_write(directory / "README.md", lambda f: f.write(card.encode()))
    return directory


def model_card(config: Mapping[str, Any]) -> str:
    """A short Markdown model card from a pretrained folder's config."""
    arch = config["model_config"]
    lines = [
        f"# pointea model: {config['model_name']}",
        "",
        f"- kind: {config.get('kind') or config.get('task')}",
        *([f"- task: {config['task']}"] if _task_name(config.get("task")) else []),
        f"- attention: {arch.get('attention', 'external')}"
        + (
            f" ({arch.get('memory_units')} memory units)"
            if arch.get("attention") == "external"
            else ""
        ),
        f"- parameters: {config['num_parameters']:,}",
        f"- dataset: {config.get('dataset') or 'not recorded'}",
        f"- points per cloud: {config.get('num_points') or 'not recorded'}",
        f"- pointea {config['pointea_version']}, torch {config['torch_version']}",
        "",
        "## Metrics",
        "",
    ]
    metrics = config.get("metrics") or {}
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    if scalars:
        lines += ["| metric | value |", "| --- | --- |"]
        lines += [
            f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |"
            for k, v in scalars.items()
        ]
    else:
        lines.append("No metrics recorded.")
    lines += ["", "## Architecture", "", "```json", json.dumps(arch, indent=2), "```", ""]
    if config.get("command"):
        lines += ["## Trained with", "", "```", config["command"], "```", ""]
    lines += [
        "## Load",
        "",
        "```python",
        "from pointea.models import load_pretrained",
        "model, info = load_pretrained('PATH/TO/THIS/FOLDER')",
        "```",
        "",
    ]
    return "\n".join(lines)


# Bounds of a saved architecture, checked before anything is built (a tampered
# ``num_classes: 1e12`` must not allocate terabytes before failing).
MAX_LABELS = 100_000  # num_classes, num_parts, num_categories
MAX_WIDTH = 16_384  # every other size: channels, memory units, samples, k, layers, heads
MAX_NUM_POINTS = 100_000_000
_LABEL_KEYS = ("num_classes", "num_parts", "num_categories")


def _check_size(value: Any, field: str, source: str, limit: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CheckpointError(
            f"{source}: {field} must be an integer, got {type(value).__name__} {value!r}"
        )
    if not 1 <= value <= limit:
        raise CheckpointError(f"{source}: {field} must be between 1 and {limit:,}, got {value}")


def check_unique_names(class_names: Sequence[str] | None, source: str) -> None:
    """Raise :class:`CheckpointError` naming ``source`` and the first name that
    ``class_names`` holds twice (their predictions and per-class counts would merge)."""
    seen: set[str] = set()
    for name in class_names or ():
        if name in seen:
            raise CheckpointError(
                f"{source}: class name {name!r} appears more than once in class_names; "
                "each class needs its own name"
            )
        seen.add(name)


def validate_config(
    config: Mapping[str, Any],
    source: str,
    *,
    class_names: Any = None,
    num_points: Any = None,
) -> None:
    """Check a saved architecture and its metadata before building anything.

    Every integer of ``model_config`` (and of its lists) must be a positive size within
    bounds (:data:`MAX_LABELS` for label counts, :data:`MAX_WIDTH` otherwise), floats
    finite; ``num_points`` ``None`` or a positive integer; ``class_names`` ``None`` or a
    list of strings, one per class (classifier) or per category (segmenter).

    Raises:
        CheckpointError: naming ``source`` and the field.
    """
    import math

    if not isinstance(config, Mapping):
        raise CheckpointError(f"{source}: model_config is missing or not a mapping")
    for key, value in config.items():
        field = f"model_config.{key}"
        limit = MAX_LABELS if key in _LABEL_KEYS else MAX_WIDTH
        if isinstance(value, float) and not math.isfinite(value):
            raise CheckpointError(f"{source}: {field} must be finite, got {value}")
        if isinstance(value, int) and not isinstance(value, bool):
            _check_size(value, field, source, limit)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, int) and not isinstance(item, bool):
                    _check_size(item, f"{field}[{i}]", source, limit)
                elif isinstance(item, bool) or not isinstance(item, (int, float)):
                    raise CheckpointError(
                        f"{source}: {field}[{i}] must be a number, got {type(item).__name__}"
                    )
    if num_points is not None:
        _check_size(num_points, "num_points", source, MAX_NUM_POINTS)
    if class_names is not None:
        if not isinstance(class_names, (list, tuple)) or not all(
            isinstance(n, str) for n in class_names
        ):
            raise CheckpointError(
                f"{source}: class_names must be a list of strings, got "
                f"{type(class_names).__name__} {str(class_names)[:80]}"
            )
        check_unique_names(class_names, source)
        key = "num_classes" if "num_classes" in config else "num_categories"
        expected = config.get(key)
        if isinstance(expected, int) and len(class_names) != expected:
            raise CheckpointError(
                f"{source}: class_names has {len(class_names)} names but "
                f"model_config.{key} is {expected}"
            )


def _build(name: Any, config: Any, source: str) -> nn.Module:
    if not isinstance(name, str) or name not in list_models():
        raise CheckpointError(
            f"{source}: unknown model name {name!r}; this pointea knows {', '.join(list_models())}"
        )
    if not isinstance(config, Mapping):
        raise CheckpointError(f"{source}: model_config is missing or not a mapping")
    try:
        return create_model(name, **config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{source}: cannot build {name} from its saved config: {exc}"
        ) from exc


def _load_state(model: nn.Module, state: Mapping[str, Any], source: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: expected {tuple(expected[k].shape)}, got {tuple(state[k].shape)}"
        for k in sorted(set(expected) & set(state))
        if not isinstance(state[k], torch.Tensor) or state[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(
            f"missing: {', '.join(missing[:10])}" + (" ..." if len(missing) > 10 else "")
        )
    if unexpected:
        problems.append(
            f"unexpected: {', '.join(unexpected[:10])}" + (" ..." if len(unexpected) > 10 else "")
        )
    if shapes:
        problems.append("other shapes: " + "; ".join(shapes[:10]))
    if problems:
        raise CheckpointError(
            f"{source}: the weights do not match the architecture: " + " | ".join(problems)
        )
    model.load_state_dict(state)


def load_pretrained(
    directory: str | os.PathLike, map_location: Any = "cpu"
) -> tuple[nn.Module, dict]:
    """Load a folder written by :func:`save_pretrained`; the model is in eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    cfg_path = directory / CONFIG_NAME
    if not cfg_path.is_file() or not (directory / WEIGHTS_NAME).is_file():
        raise CheckpointError(
            f"{directory}: not a pointea model folder (needs {CONFIG_NAME} and {WEIGHTS_NAME})"
        )
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{cfg_path}: malformed JSON: {exc}") from exc
    if not isinstance(config, dict) or config.get("format") != PRETRAINED_FORMAT:
        raise CheckpointError(f"{cfg_path}: 'format' is not {PRETRAINED_FORMAT!r}")
    validate_config(
        config.get("model_config"),
        str(cfg_path),
        class_names=config.get("class_names"),
        num_points=config.get("num_points"),
    )
    model = _build(config.get("model_name"), config.get("model_config"), str(cfg_path))
    try:
        state = load_file(directory / WEIGHTS_NAME, device=str(map_location))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{directory / WEIGHTS_NAME}: unreadable weights: {exc}") from exc
    _load_state(model, state, str(directory / WEIGHTS_NAME))
    model.class_names = config.get("class_names")
    info = {
        "source": "pretrained",
        "path": str(directory),
        "kind": model_kind(model.name),
        "task": _task_name(config.get("task")),
        "class_names": config.get("class_names"),
        "num_points": config.get("num_points"),
        "metrics": config.get("metrics", {}),
        "config": {},
    }
    return model.eval(), info


def _task_name(value: Any) -> str | None:
    """A saved ``task`` field as a task name: ``None`` when absent or when it holds a kind
    (folders and checkpoints of format 1 stored the kind there)."""
    kinds = {model_kind(name) for name in list_models()}
    return value if isinstance(value, str) and value not in kinds else None


def model_from_checkpoint(
    checkpoint: Mapping[str, Any], source: str = "checkpoint", kind: str | None = None
) -> nn.Module:
    """Build the model of a loaded pointea training checkpoint and load its weights."""
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{source}: not a pointea training checkpoint (no 'format' marker)")
    saved = checkpoint.get("config")
    validate_config(
        checkpoint.get("model_config"),
        source,
        class_names=checkpoint.get("class_names"),
        num_points=saved.get("num_points") if isinstance(saved, Mapping) else None,
    )
    model = _build(checkpoint.get("model_name"), checkpoint.get("model_config"), source)
    if kind is not None and model_kind(model.name) != kind:
        raise CheckpointError(
            f"{source}: is a {model_kind(model.name)} model ({model.name}), expected {kind}"
        )
    if not isinstance(checkpoint.get("model"), Mapping):
        raise CheckpointError(f"{source}: has no 'model' state dict")
    _load_state(model, checkpoint["model"], source)
    model.class_names = checkpoint.get("class_names")
    return model


def load_model(path: str | os.PathLike, map_location: Any = "cpu") -> tuple[nn.Module, dict]:
    """Load a model from a pretrained folder, a training checkpoint or a PCT_Pytorch file.

    Returns:
        ``(model, info)`` with the model in eval mode; ``info`` has ``source``, ``kind``
        (what the model predicts), ``task`` (the task it was trained on, ``None`` when
        not recorded),
        ``class_names``, ``num_points``, ``metrics`` and the training ``config`` when known.
    """
    path = Path(path)
    if path.is_dir():
        return load_pretrained(path, map_location)
    obj = safe_torch_load(path, map_location=map_location)
    if isinstance(obj, Mapping) and obj.get("format") == CHECKPOINT_FORMAT:
        model = model_from_checkpoint(obj, str(path))
        config = obj.get("config") or {}
        info = {
            "source": "checkpoint",
            "path": str(path),
            "kind": model_kind(model.name),
            "task": _task_name(config.get("task")),
            "class_names": obj.get("class_names"),
            "num_points": config.get("num_points"),
            "metrics": obj.get("metrics") or {},
            "config": dict(config),
            "epoch": obj.get("epoch"),
        }
        return model.eval(), info
    if is_pct_pytorch_state_dict(obj):
        model = from_pct_pytorch(obj)
        info = {
            "source": "pct_pytorch",
            "path": str(path),
            "kind": "classification",
            "task": "modelnet40",
            "class_names": model.class_names,
            "num_points": 1024,
            "metrics": {},
            "config": {},
        }
        return model, info
    kind = type(obj).__name__
    raise CheckpointError(
        f"{path}: not a pointea model: expected a pointea training checkpoint, a folder "
        f"made by save_pretrained, or a PCT_Pytorch state dict (got a {kind})"
    )
