"""Small building blocks shared by the layers and the models."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError


def check_call_order(x: Tensor | None, pos: Tensor | None, batch: Tensor | None) -> Tensor:
    """``pos`` of a model called PyG's way, ``model(x, pos, batch)`` (or by keyword);
    an :class:`~pointea.errors.InputError` that names the order for a call in another one.

    The models take ``(x, pos, batch)`` with keywords for the rest; an old-style
    ``model(pos, batch)`` puts the coordinates in ``x`` and the batch vector in ``pos``,
    which this refuses instead of running on it."""
    hint = "call model(x, pos, batch) (x: features or None), or model(pos=pos, batch=batch)"
    if pos is None:
        raise InputError(f"pos: missing; {hint}")
    if not isinstance(pos, Tensor) or pos.dim() != 2 or not pos.is_floating_point():
        shape = tuple(pos.shape) if isinstance(pos, Tensor) else type(pos).__name__
        dtype = pos.dtype if isinstance(pos, Tensor) else ""
        raise InputError(
            f"pos: expected float coordinates (num_points, 3), got {shape} {dtype}; "
            f"the argument order is (x, pos, batch): {hint}"
        )
    if batch is not None and isinstance(batch, Tensor) and batch.is_floating_point():
        raise InputError(f"batch: expected cloud indices (integers), got {batch.dtype}; {hint}")
    return pos


def point_input(pos: Tensor, x: Tensor | None, in_channels: int) -> Tensor:
    """A model's per-point input: xyz (``in_channels == 3``) or xyz + normals (6)."""
    if in_channels == 3:
        return pos
    if x is None:
        raise InputError("x: this model reads normals (in_channels=6) but x is None")
    return torch.cat([pos, x], dim=-1)


class LBR(nn.Sequential):
    """Linear + BatchNorm + activation on per-point features: ``(N, C_in) -> (N, C_out)``.

    The "LBR" of the PCT paper (a 1x1 convolution, batch norm and ReLU in the original).

    Args:
        in_channels: input features per point.
        out_channels: output features per point.
        bias: whether the linear map has a bias (default ``False``: the batch norm
            that follows makes one redundant).
        negative_slope: ``0`` for ReLU, else the slope of a LeakyReLU.
    """

    def __init__(
        self, in_channels: int, out_channels: int, bias: bool = False, negative_slope: float = 0.0
    ) -> None:
        # in place: BatchNorm's backward needs its input, not its output, so the activation
        # may overwrite it (one activation-sized tensor less kept for backward)
        act = nn.ReLU(inplace=True) if negative_slope == 0 else nn.LeakyReLU(negative_slope, True)
        super().__init__(
            nn.Linear(in_channels, out_channels, bias=bias), nn.BatchNorm1d(out_channels), act
        )

    @property
    def linear(self) -> nn.Linear:
        return self[0]

    @property
    def norm(self) -> nn.BatchNorm1d:
        return self[1]

    @property
    def activation(self) -> nn.Module:
        """The activation (an in-place ReLU or LeakyReLU) applied after the batch norm."""
        return self[2]

    @property
    def out_channels(self) -> int:
        """Output features per point."""
        return self.linear.out_features

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102 - Sequential semantics
        return super().forward(x)

    def folded(self) -> tuple[Tensor, Tensor]:
        """The linear map and the evaluation-mode BatchNorm as one affine map.

        ``(weight, bias)`` with ``self.activate(F.linear(x, W, b)) ==
        self.activation(F.linear(x, weight, bias))`` in eval mode (up to rounding): the batch
        norm's per-channel scale goes into the weight's rows and its shift into the bias.
        """
        return self.fold(self.linear.weight, self.linear.bias)

    def fold(self, weight: Tensor, bias: Tensor | None) -> tuple[Tensor, Tensor]:
        """This layer's evaluation-mode batch norm folded into the affine map
        ``(weight, bias)`` (any map with ``out_channels`` outputs, e.g. a column block
        of :attr:`linear`'s weight): see :func:`fold_batchnorm`."""
        return fold_batchnorm(weight, bias, self.norm)

    def activate(self, pre: Tensor) -> Tensor:
        """BatchNorm + activation of an already computed linear map ``pre``."""
        return self.activation(self.norm(pre))

    def forward_parts(self, parts: Sequence[Tensor]) -> Tensor:
        """``forward(torch.cat(parts, dim=-1))`` without materialising the concatenation.

        The linear map is applied as a sum of per-part products with column blocks of its
        weight, so autograd keeps only the parts (usually alive anyway) instead of one
        more wide tensor.
        """
        weights = self.linear.weight.split([p.size(-1) for p in parts], dim=1)
        out = F.linear(parts[0], weights[0], self.linear.bias)
        for part, weight in zip(parts[1:], weights[1:], strict=True):
            if out.dtype == part.dtype == weight.dtype:
                out = out.addmm_(part, weight.t())  # accumulate in place: no temporary
            else:  # mixed precision (autocast): in-place products are not cast
                out = out + F.linear(part, weight)
        return self.activate(out)


def fold_batchnorm(
    weight: Tensor, bias: Tensor | None, norm: nn.BatchNorm1d
) -> tuple[Tensor, Tensor]:
    """``norm(F.linear(x, weight, bias))`` with running statistics as one affine map.

    Returns ``(scale * weight, scale * (bias - running_mean) + beta)`` with
    ``scale = gamma / sqrt(running_var + eps)`` (``gamma = 1``, ``beta = 0`` without affine
    parameters): exact algebra, for inference only (training uses batch statistics).
    """
    if norm.running_mean is None or norm.running_var is None:
        raise InputError("norm: folding needs running statistics (track_running_stats=True)")
    scale = torch.rsqrt(norm.running_var + norm.eps)
    shift = -norm.running_mean * scale
    if norm.weight is not None:
        scale = scale * norm.weight
        shift = shift * norm.weight + norm.bias
    if bias is not None:
        shift = shift + scale * bias
    return weight * scale.unsqueeze(1), shift
