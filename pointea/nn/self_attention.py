"""The self-attention of PCT, per cloud, on packed batches (the baseline)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.utils import to_dense_batch

from ..errors import InputError
from ..ops import CloudLayout, layout_of


class SelfAttention(nn.Module):
    r"""PCT's self-attention: shared query/key projection, no scaling, softmax then l1.

    From "PCT: Point cloud transformer" (Guo et al.; https://arxiv.org/abs/2012.09688).
    Within one cloud, with :math:`Q = K = F W_{qk}` (``d -> d / 4``, no bias) and
    :math:`V = F W_v + b_v`:

    .. math::
        E = Q K^\top,\quad \tilde A_{ij} = \frac{e^{E_{ij}}}{\sum_{j'} e^{E_{ij'}}},\quad
        A_{ij} = \frac{\tilde A_{ij}}{\epsilon + \sum_{i'} \tilde A_{i'j}},\quad
        F_{out, j} = \sum_i A_{ij} V_i

    Memory and time are quadratic in the cloud size (one ``N x N`` map per cloud);
    clouds of different sizes are padded and masked, never mixed.

    Args:
        channels: features per point ``d``.
        qk_reduction: ``d / dim(Q)`` (4 in PCT).
        eps: the l1 normalisation's epsilon.

    Shapes:
        - input: ``x`` ``(N, d)``, ``batch`` ``(N,)`` or ``None``
        - output: ``(N, d)``
    """

    def __init__(self, channels: int, qk_reduction: int = 4, eps: float = 1e-9) -> None:
        super().__init__()
        self.channels = channels
        self.qk_proj = nn.Linear(channels, channels // qk_reduction, bias=False)
        self.v_proj = nn.Linear(channels, channels)
        self.eps = eps
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.qk_proj.reset_parameters()
        self.v_proj.reset_parameters()

    def forward(
        self, x: Tensor, batch: Tensor | None = None, layout: CloudLayout | None = None
    ) -> Tensor:
        if x.dim() != 2 or x.size(-1) != self.channels:
            raise InputError(
                f"x: expected shape (num_points, {self.channels}), got {tuple(x.shape)}"
            )
        if layout is None:
            layout = layout_of(batch, x.size(0), x.device)
        q = self.qk_proj(x)
        v = self.v_proj(x)
        if layout.uniform is not None:
            q = q.view(layout.num_clouds, layout.uniform, -1)
            v = v.view(layout.num_clouds, layout.uniform, -1)
            mask = None
        else:
            q, mask = to_dense_batch(q, layout.batch, batch_size=layout.num_clouds)
            v, _ = to_dense_batch(v, layout.batch, batch_size=layout.num_clouds)
        energy = q @ q.transpose(1, 2)  # (B, N, N), energy[b, i, j] = q_i . q_j
        if mask is not None:
            energy = energy.masked_fill(~mask[:, None, :], float("-inf"))
        attn = torch.softmax(energy, dim=-1)
        if mask is not None:
            attn = attn * mask[:, :, None]
        attn = attn / (self.eps + attn.sum(dim=1, keepdim=True))
        out = attn.transpose(1, 2) @ v  # out[b, j] = sum_i attn[b, i, j] v[b, i]
        return out.reshape(-1, self.channels) if mask is None else out[mask]

    def extra_repr(self) -> str:
        return f"{self.channels}"
