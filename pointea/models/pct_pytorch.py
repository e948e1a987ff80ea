"""Import checkpoints of the public PCT reimplementation (PCT_Pytorch).

That project saves ``torch.save(model.state_dict(), "model.t7")`` from a model wrapped in
``nn.DataParallel``, so every key starts with ``module.``; its 1x1 convolutions store
``(out, in, 1)`` weights; the query and key projections of each attention layer share one
tensor (both keys are present). :func:`from_pct_pytorch` maps those 113 keys onto
pointea's self-attention :class:`~pointea.models.PCTClassifier` with the published
widths, so the imported model computes the same logits (same FPS start, same kNN):
``tests/models/test_interop.py`` checks this against an independent forward written from
PCT_Pytorch's ``model.py`` and ``util.py``, on a state dict in the released checkpoint's
key layout. One difference remains: PCT_Pytorch's CUDA FPS never picks a later centre
within about 0.032 of the origin (``sampling_gpu.cu``), pointea's FPS considers every
point; the two agree unless a cloud has points that close to its origin.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor

from ..errors import CheckpointError
from ..serialization import safe_torch_load
from .registry import create_model

# PCT_Pytorch's checkpoints are ModelNet40 models: the 40 classes in label order
# (the order of the published shape_names.txt).
MODELNET40_CLASSES: tuple[str, ...] = (
    "airplane",
    "bathtub",
    "bed",
    "bench",
    "bookshelf",
    "bottle",
    "bowl",
    "car",
    "chair",
    "cone",
    "cup",
    "curtain",
    "desk",
    "door",
    "dresser",
    "flower_pot",
    "glass_box",
    "guitar",
    "keyboard",
    "lamp",
    "laptop",
    "mantel",
    "monitor",
    "night_stand",
    "person",
    "piano",
    "plant",
    "radio",
    "range_hood",
    "sink",
    "sofa",
    "stairs",
    "stool",
    "table",
    "tent",
    "toilet",
    "tv_stand",
    "vase",
    "wardrobe",
    "xbox",
)

__all__ = [
    "MODELNET40_CLASSES",
    "from_pct_pytorch",
    "convert_pct_pytorch_state_dict",
    "is_pct_pytorch_state_dict",
]

_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _key_map(num_attention_layers: int = 4) -> dict[str, str]:
    """PCT_Pytorch key (without ``module.``) -> pointea key."""
    mapping: dict[str, str] = {}

    def conv_bn(src_conv: str, src_bn: str, dst: str) -> None:
        mapping[f"{src_conv}.weight"] = f"{dst}.0.weight"
        for f in _BN:
            mapping[f"{src_bn}.{f}"] = f"{dst}.1.{f}"

    conv_bn("conv1", "bn1", "point_embed.0")
    conv_bn("conv2", "bn2", "point_embed.1")
    for i in range(2):
        src, dst = f"gather_local_{i}", f"stages.{i}"
        mapping[f"{src}.conv1.weight"] = f"{dst}.lin1.weight"
        mapping[f"{src}.conv2.weight"] = f"{dst}.lin2.weight"
        for f in _BN:
            mapping[f"{src}.bn1.{f}"] = f"{dst}.norm1.{f}"
            mapping[f"{src}.bn2.{f}"] = f"{dst}.norm2.{f}"
    conv_bn("pt_last.conv1", "pt_last.bn1", "pre_attention.0")
    conv_bn("pt_last.conv2", "pt_last.bn2", "pre_attention.1")
    for i in range(num_attention_layers):
        src, dst = f"pt_last.sa{i + 1}", f"attention.{i}"
        mapping[f"{src}.q_conv.weight"] = f"{dst}.attention.qk_proj.weight"
        mapping[f"{src}.k_conv.weight"] = f"{dst}.attention.qk_proj.weight"  # shared
        mapping[f"{src}.v_conv.weight"] = f"{dst}.attention.v_proj.weight"
        mapping[f"{src}.v_conv.bias"] = f"{dst}.attention.v_proj.bias"
        mapping[f"{src}.trans_conv.weight"] = f"{dst}.transform.0.weight"
        mapping[f"{src}.trans_conv.bias"] = f"{dst}.transform.0.bias"
        for f in _BN:
            mapping[f"{src}.after_norm.{f}"] = f"{dst}.transform.1.{f}"
    conv_bn("conv_fuse.0", "conv_fuse.1", "fuse")
    mapping["linear1.weight"] = "head.0.weight"
    mapping["linear2.weight"] = "head.4.weight"
    mapping["linear2.bias"] = "head.4.bias"
    mapping["linear3.weight"] = "head.8.weight"
    mapping["linear3.bias"] = "head.8.bias"
    for f in _BN:
        mapping[f"bn6.{f}"] = f"head.1.{f}"
        mapping[f"bn7.{f}"] = f"head.5.{f}"
    return mapping


def _strip(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {re.sub(r"^module\.", "", k): v for k, v in state.items()}


def is_pct_pytorch_state_dict(state: object) -> bool:
    """Whether ``state`` looks like a PCT_Pytorch classifier state dict."""
    if not isinstance(state, Mapping) or not state:
        return False
    keys = set(_strip(state))  # type: ignore[arg-type]
    return {"conv1.weight", "gather_local_0.conv1.weight", "pt_last.sa1.q_conv.weight"} <= keys


def convert_pct_pytorch_state_dict(
    state: Mapping[str, Tensor], source: str = "state dict"
) -> tuple[dict[str, Tensor], int]:
    """Rename and reshape a PCT_Pytorch state dict into pointea's layout.

    Returns:
        ``(state_dict, num_classes)`` for ``create_model("pct_cls", attention="self",
        num_classes=num_classes)``.

    Raises:
        CheckpointError: listing missing keys, unexpected keys, non-tensor values and
            query/key weights that are not shared as they must be.
    """
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: expected a state dict, got {type(state).__name__}")
    src = _strip(state)
    mapping = _key_map()
    problems: list[str] = []
    missing = sorted(set(mapping) - set(src))
    unexpected = sorted(set(src) - set(mapping))
    if missing:
        problems.append(
            f"missing keys: {', '.join(missing[:12])}" + (" ..." if len(missing) > 12 else "")
        )
    if unexpected:
        problems.append(
            f"unexpected keys: {', '.join(unexpected[:12])}"
            + (" ..." if len(unexpected) > 12 else "")
        )
    not_tensor = sorted(k for k, v in src.items() if not isinstance(v, Tensor))
    if not_tensor:
        problems.append(f"values that are not tensors: {', '.join(not_tensor[:12])}")
    if problems:
        raise CheckpointError(
            f"{source}: not a PCT_Pytorch classifier checkpoint: " + "; ".join(problems)
        )
    out: dict[str, Tensor] = {}
    for key, dst in mapping.items():
        value = src[key]
        if value.dim() == 3 and value.size(-1) == 1:  # Conv1d(kernel_size=1) -> Linear
            value = value[..., 0]
        if dst in out and not torch.equal(out[dst], value):
            raise CheckpointError(
                f"{source}: {key} differs from its shared query weight; PCT's query and key "
                f"projections must be one tensor"
            )
        out[dst] = value
    return out, int(src["linear3.weight"].shape[0])


def from_pct_pytorch(
    path_or_state: str | os.PathLike | Mapping[str, Tensor],
    class_names: Sequence[str] | None = None,
) -> torch.nn.Module:
    """Build pointea's self-attention classifier from a PCT_Pytorch checkpoint.

    Args:
        path_or_state: a ``model.t7`` file (loaded with ``weights_only=True``) or an
            already loaded state dict.
        class_names: names of the output classes, kept in ``model.class_names``
            (default: ModelNet40's 40 names for a 40-class checkpoint).

    Returns:
        The classifier in eval mode, with ``model.class_names`` set.
    """
    if isinstance(path_or_state, Mapping):
        state, source = path_or_state, "state dict"
    else:
        source = str(path_or_state)
        state = safe_torch_load(Path(path_or_state))
        if isinstance(state, Mapping) and "model_state_dict" in state:  # some forks wrap it
            state = state["model_state_dict"]
    converted, num_classes = convert_pct_pytorch_state_dict(state, source)
    if class_names is None and num_classes == len(MODELNET40_CLASSES):
        class_names = MODELNET40_CLASSES
    model = create_model("pct_cls", attention="self", num_classes=num_classes)
    expected = model.state_dict()
    wrong = [
        f"{k}: expected {tuple(expected[k].shape)}, got {tuple(v.shape)}"
        for k, v in converted.items()
        if tuple(expected[k].shape) != tuple(v.shape)
    ]
    if wrong:
        raise CheckpointError(
            f"{source}: tensors with other shapes than PCT's: " + "; ".join(wrong[:8])
        )
    model.load_state_dict(converted)
    if class_names is not None and len(class_names) != num_classes:
        raise CheckpointError(
            f"class_names: {len(class_names)} names for a {num_classes}-class checkpoint"
        )
    model.class_names = list(class_names) if class_names is not None else None
    return model.eval()
