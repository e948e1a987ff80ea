"""Model registry: ``create_model(name, **kwargs)`` and the presets."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from ..errors import InputError
from .classifier import PCTClassifier
from .segmenter import PCTSegmenter

_REGISTRY: dict[str, tuple[str, Callable[..., nn.Module]]] = {}


def register_model(kind: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a preset function under its own name for a kind of output
    (``"classification"``, ``"segmentation"`` or ``"semseg"``)."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[fn.__name__] = (kind, fn)
        return fn

    return wrap


def list_models(kind: str | None = None) -> list[str]:
    """Registered model names, optionally only those of one kind."""
    return sorted(n for n, (k, _) in _REGISTRY.items() if kind is None or k == kind)


def model_kind(name: str) -> str:
    """What the registered model ``name`` predicts: ``"classification"``,
    ``"segmentation"`` or ``"semseg"``."""
    _check_name(name)
    return _REGISTRY[name][0]


def _check_name(name: str) -> None:
    if name not in _REGISTRY:
        raise InputError(f"model: unknown name {name!r}; registered: {', '.join(list_models())}")


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model.

    The model gets ``name``, ``kind`` and ``hparams`` (every constructor argument, as
    plain values) attributes, so ``create_model(model.name, **model.hparams)`` rebuilds it.
    """
    _check_name(name)
    kind, fn = _REGISTRY[name]
    model = fn(**kwargs)
    model.name = name
    model.kind = kind
    return model


def _preset(cls: type[nn.Module], defaults: dict[str, Any], kwargs: dict[str, Any]) -> nn.Module:
    """``cls(**defaults, **kwargs)`` with every resolved argument kept in ``hparams``."""
    model = cls(**{**defaults, **kwargs})
    bound = inspect.signature(cls).bind(**{**defaults, **kwargs})
    bound.apply_defaults()
    model.hparams = {k: list(v) if isinstance(v, tuple) else v for k, v in bound.arguments.items()}
    return model


@register_model("classification")
def pct_cls(**kwargs: Any) -> nn.Module:
    """The published PCT classifier's widths (external attention by default)."""
    return _preset(PCTClassifier, {}, kwargs)


@register_model("classification")
def pct_cls_tiny(**kwargs: Any) -> nn.Module:
    """A narrow, shallow classifier for tests, demos and CPU experiments (~0.1 M params)."""
    defaults = dict(
        embed_channels=32,
        stage_channels=(64, 128),
        num_samples=(256, 128),
        k=16,
        num_attention_layers=2,
        fuse_channels=256,
        head_channels=(128, 64),
    )
    return _preset(PCTClassifier, defaults, kwargs)


@register_model("segmentation")
def pct_seg(**kwargs: Any) -> nn.Module:
    """The published PCT part segmenter's widths (external attention by default)."""
    return _preset(PCTSegmenter, {}, kwargs)


@register_model("segmentation")
def pct_seg_tiny(**kwargs: Any) -> nn.Module:
    """A narrow segmenter for tests, demos and CPU experiments."""
    defaults = dict(
        embed_channels=32,
        num_attention_layers=2,
        fuse_channels=128,
        category_channels=16,
        head_channels=(128, 64),
    )
    return _preset(PCTSegmenter, defaults, kwargs)


# -- semantic segmentation of scenes (S3DIS): task "semseg" -----------------------------
from .semseg import PCTSemSeg  # noqa: E402


@register_model("semseg")
def pct_semseg(**kwargs: Any) -> nn.Module:
    """The PCT segmenter's widths on xyz + rgb + room location (external attention)."""
    return _preset(PCTSemSeg, {}, kwargs)


@register_model("semseg")
def pct_semseg_tiny(**kwargs: Any) -> nn.Module:
    """A narrow scene segmenter for tests, demos and CPU training."""
    defaults = dict(
        embed_channels=32,
        num_attention_layers=4,
        fuse_channels=128,
        category_channels=16,
        head_channels=(128, 64),
        dropout=0.3,
    )
    return _preset(PCTSemSeg, defaults, kwargs)
