"""PCT's neighbour embedding: sample centres, group neighbours, pool."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from ..ops import CloudLayout, farthest_point_sample, knn_groups, layout_of, segment_max
from .fused import batchnorm_relu_max, fusable_norm, sign_of_weight


@torch.compiler.disable  # torch_cluster's kernels have no fake-tensor form: run eagerly
def _sample_and_group(
    pos: Tensor, layout: CloudLayout, num_samples: int, k: int, random_start: bool
) -> tuple[Tensor, Tensor, CloudLayout, Tensor, Tensor, int | None]:
    """FPS centres (rows, xyz, layout) and their kNN edges (centre, point, uniform k)."""
    centre, centre_layout = farthest_point_sample(pos, layout, num_samples, random_start)
    centre_pos = pos[centre]
    edge_centre, edge_point, k_uniform = knn_groups(pos, layout, centre_pos, centre_layout, k)
    return centre, centre_pos, centre_layout, edge_centre, edge_point, k_uniform


class NeighborEmbedding(nn.Module):
    r"""One sample-and-group stage of PCT's neighbour embedding.

    Picks ``num_samples`` centres per cloud by farthest point sampling, takes each
    centre's ``k`` nearest points (in xyz, the centre included), builds the edge features
    :math:`[f_{nbr} - f_{c},\; f_{c}]` (``2 C_in``), applies two LBRs and max-pools over
    the neighbours.

    The first linear map is applied without materialising the concatenation:
    :math:`W [f_n - f_c; f_c] = W_1 f_n + (W_2 - W_1) f_c`, with :math:`W = [W_1\ W_2]`.
    Both terms are computed once per point / centre and gathered onto the edges, which
    is exact and removes the widest matrix product of the stage. The parameter layout
    is that of the plain ``Linear(2 C_in, C_out)`` (so published weights load as they are).

    Args:
        in_channels: per-point input features ``C_in``.
        out_channels: output features per centre ``C_out``.
        num_samples: centres per cloud (a cloud with fewer points keeps all of them).
        k: neighbours per centre (fewer in a cloud with fewer than ``k`` points).
        random_start: start FPS at a random point (default: each cloud's first point).

    Shapes:
        - input: ``x`` ``(N, C_in)``, ``pos`` ``(N, 3)``, ``batch`` ``(N,)`` or ``None``
        - output: ``(x, pos, layout)`` of the centres: ``(M, C_out)``, ``(M, 3)``
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_samples: int,
        k: int = 32,
        random_start: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_samples = num_samples
        self.k = k
        self.random_start = random_start
        self.lin1 = nn.Linear(2 * in_channels, out_channels, bias=False)
        self.norm1 = nn.BatchNorm1d(out_channels)
        self.lin2 = nn.Linear(out_channels, out_channels, bias=False)
        self.norm2 = nn.BatchNorm1d(out_channels)

    def reset_parameters(self) -> None:
        for m in (self.lin1, self.norm1, self.lin2, self.norm2):
            m.reset_parameters()

    def forward(
        self,
        x: Tensor,
        pos: Tensor,
        batch: Tensor | None = None,
        layout: CloudLayout | None = None,
        plan: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor, CloudLayout]:
        """``plan``: this stage's centres ``(M,)`` and neighbours ``(M, k)`` computed ahead
        (:mod:`pointea.nn.sampling_plan`); the stage then samples nothing itself."""
        if x.dim() != 2 or x.size(-1) != self.in_channels:
            raise InputError(
                f"x: expected shape (num_points, {self.in_channels}), got {tuple(x.shape)}"
            )
        if layout is None:
            layout = layout_of(batch, x.size(0), x.device)
        if plan is not None:
            centre, centre_layout, edge_point = self._planned(plan, layout)
            out = self.aggregate(x, centre, centre, edge_point, self.k)
            return out, pos.index_select(0, centre), centre_layout
        centre, centre_pos, centre_layout, edge_centre, edge_point, k_uniform = _sample_and_group(
            pos, layout, self.num_samples, self.k, self.random_start
        )
        out = self.aggregate(x, centre, edge_centre, edge_point, k_uniform)
        return out, centre_pos, centre_layout

    def _planned(
        self, plan: tuple[Tensor, Tensor], layout: CloudLayout
    ) -> tuple[Tensor, CloudLayout, Tensor]:
        """Centres, their layout and the flat neighbour rows of a precomputed plan,
        checked by shape only (no value is read back from the device)."""
        centre, neighbours = plan
        m = centre.numel()
        if centre.dim() != 1 or neighbours.shape != (m, self.k):
            raise InputError(
                f"plan: expected centres (M,) and neighbours (M, {self.k}), got "
                f"{tuple(centre.shape)} and {tuple(neighbours.shape)}"
            )
        # every cloud keeps min(size, num_samples) centres, so M == B * per_cloud holds
        # exactly when all of them kept per_cloud (known from the shapes alone)
        per_cloud = self.num_samples if layout.uniform is None else layout.uniform
        per_cloud = min(per_cloud, self.num_samples)
        if m == per_cloud * layout.num_clouds:
            clouds = torch.arange(layout.num_clouds, device=centre.device)
            counts = torch.full((layout.num_clouds,), per_cloud, device=centre.device)
            centre_layout = CloudLayout(clouds.repeat_interleave(per_cloud), layout.num_clouds,
                                        per_cloud, counts)  # fmt: skip
        else:  # clouds of different sizes: counts on the device
            batch = layout.batch.index_select(0, centre)
            counts = torch.zeros(layout.num_clouds, dtype=torch.long, device=centre.device)
            counts.scatter_add_(0, batch, torch.ones_like(batch))
            centre_layout = CloudLayout(batch, layout.num_clouds, None, counts)
        return centre, centre_layout, neighbours.reshape(-1)

    def aggregate(
        self,
        x: Tensor,
        centre: Tensor,
        edge_centre: Tensor,
        edge_point: Tensor,
        k_uniform: int | None,
    ) -> Tensor:
        """Edge features, two LBRs and the max over each centre's neighbours.

        Args:
            x: ``(N, C_in)`` point features.
            centre: ``(M,)`` rows of ``x`` that are centres.
            edge_centre: ``(E,)`` centre (``0..M-1``) of each edge.
            edge_point: ``(E,)`` row of ``x`` of each edge's neighbour.
            k_uniform: neighbours per centre when all have the same count (dense max).

        Returns:
            ``(M, C_out)``.
        """
        w_nbr, w_centre = self.lin1.weight.split(self.in_channels, dim=1)
        per_point = F.linear(x, w_nbr)  # (N, C_out)
        per_centre = F.linear(x.index_select(0, centre), w_centre - w_nbr)  # (M, C_out)
        # index_select: its backward (index_add_) is much faster than indexing's index_put_
        # (not added in place: on a view, autograd's CopySlices copies the gradient twice)
        h = per_point.index_select(0, edge_point)
        if k_uniform is not None:  # k consecutive edges per centre: broadcast the centre
            h = (h.view(-1, k_uniform, self.out_channels) + per_centre.unsqueeze(1)).flatten(0, 1)
        else:
            h = h + per_centre.index_select(0, edge_centre)
        h = F.relu(self.norm1(h), inplace=True)
        if k_uniform is not None and fusable_norm(self.norm2):
            # LBR + max fused; the sign flip makes every batch-norm scale non-negative
            sign = sign_of_weight(self.norm2)
            y = F.linear(h, self.lin2.weight * sign.unsqueeze(1))
            return batchnorm_relu_max(y, k_uniform, self.norm2, sign)
        h = F.relu(self.norm2(self.lin2(h)), inplace=True)
        if k_uniform is not None:  # (a batch norm of another kind)
            # max (with indices) backpropagates by a scatter, amax by a dense mask: slower
            return h.view(-1, k_uniform, self.out_channels).max(dim=1).values
        return segment_max(h, edge_centre, centre.numel())

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, num_samples={self.num_samples}, k={self.k}"
        )
