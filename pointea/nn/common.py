"""Small building blocks shared by the layers and the models."""

from __future__ import annotations

from torch import Tensor, nn


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
        act = nn.ReLU() if negative_slope == 0 else nn.LeakyReLU(negative_slope)
        super().__init__(
            nn.Linear(in_channels, out_channels, bias=bias), nn.BatchNorm1d(out_channels), act
        )

    @property
    def linear(self) -> nn.Linear:
        return self[0]

    @property
    def norm(self) -> nn.BatchNorm1d:
        return self[1]

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102 - Sequential semantics
        return super().forward(x)
