"""What a run trains with, built from its settings: model, loss, optimiser, schedule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..tasks import TaskData
from .config import TrainConfig

__all__ = ["build_model", "build_optimizer", "build_scheduler", "loss_function"]

#: TrainConfig fields passed to the model when set (None: the model's own default)
_MODEL_OPTIONS = ("memory_units", "heads", "tie_memories", "dropout")


def build_model(cfg: TrainConfig, data: TaskData) -> nn.Module:
    """Create the registry model ``cfg.model`` sized for ``data``."""
    from ..models import create_model

    kwargs: dict[str, Any] = {"attention": cfg.attention, **cfg.spec.model_options(cfg, data)}
    for name in _MODEL_OPTIONS:
        value = getattr(cfg, name)
        if value is not None:
            kwargs[name] = value
    return create_model(cfg.model, **kwargs)


def loss_function(cfg: TrainConfig, num_classes: int) -> Callable[[Tensor, Tensor], Tensor]:
    """Cross-entropy with the reference's label smoothing (true class
    ``1 - eps``, every other class ``eps / (K - 1)``), i.e. torch's ``label_smoothing``
    of ``eps * K / (K - 1)``."""
    eps = float(cfg.label_smoothing or 0.0)
    torch_eps = min(eps * num_classes / (num_classes - 1), 1.0) if num_classes > 1 else 0.0

    def loss(logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), target, label_smoothing=torch_eps)

    return loss


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD with momentum, Adam or AdamW, with ``cfg``'s learning rate and weight decay
    (L2 for SGD / Adam, decoupled for AdamW)."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def build_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer) -> Any:
    """Cosine annealing from ``lr`` to ``min_lr`` over ``epochs`` (stepped once per epoch)."""
    return torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=cfg.epochs, eta_min=cfg.min_lr
    )
