"""Networks built from :mod:`pointea.nn`, the registry, and model import/export."""

from .classifier import PCTClassifier
from .hub import load_model, load_pretrained, model_from_checkpoint, save_pretrained
from .pct_pytorch import convert_pct_pytorch_state_dict, from_pct_pytorch
from .registry import create_model, list_models, model_kind, register_model
from .segmenter import PCTSegmenter

__all__ = [
    "PCTClassifier",
    "PCTSegmenter",
    "convert_pct_pytorch_state_dict",
    "create_model",
    "from_pct_pytorch",
    "list_models",
    "load_model",
    "load_pretrained",
    "model_from_checkpoint",
    "model_kind",
    "register_model",
    "save_pretrained",
]
