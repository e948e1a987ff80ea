"""A dense, padded ``(B, C, N)`` PCT classifier written the way research repos write it.

This is the *reference* that pointea's packed PyG path is measured against: FPS as a
plain loop over the samples, kNN by a full distance matrix and ``topk``, the neighbour
features ``[f_nbr - f_centre, f_centre]`` materialised and passed through 1x1
convolutions, attention on dense ``(B, N, N)`` maps. Module and parameter names follow
the public PCT_Pytorch reimplementation's checkpoint keys, so the same state dict loads
here and (converted) into :class:`pointea.models.PCTClassifier`: the tests use that to
check the import and the packed path against this independent implementation.

Only equal-size clouds; no validation; not for production use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def dense_fps(xyz: Tensor, npoint: int) -> Tensor:
    """Farthest point sampling in a Python loop; starts at point 0. ``(B, N, 3) -> (B, npoint)``."""
    b, n, _ = xyz.shape
    idx = torch.zeros(b, npoint, dtype=torch.long, device=xyz.device)
    dist = torch.full((b, n), float("inf"), device=xyz.device)
    farthest = torch.zeros(b, dtype=torch.long, device=xyz.device)
    rows = torch.arange(b, device=xyz.device)
    for i in range(npoint):
        idx[:, i] = farthest
        centre = xyz[rows, farthest].unsqueeze(1)
        dist = torch.minimum(dist, ((xyz - centre) ** 2).sum(-1))
        farthest = dist.argmax(-1)
    return idx


def dense_knn(k: int, xyz: Tensor, centres: Tensor) -> Tensor:
    """Indices of the ``k`` nearest points by a full distance matrix: ``(B, S, k)``."""
    d = torch.cdist(centres, xyz) ** 2
    return d.topk(k, dim=-1, largest=False, sorted=False).indices


def gather(points: Tensor, idx: Tensor) -> Tensor:
    """``points (B, N, C)``, ``idx (B, ...)`` -> ``(B, ..., C)``."""
    b = points.size(0)
    flat = idx.reshape(b, -1)
    out = torch.gather(points, 1, flat.unsqueeze(-1).expand(-1, -1, points.size(-1)))
    return out.view(*idx.shape, points.size(-1))


class LocalOp(nn.Module):
    """Grouped features ``(B, S, k, 2C)`` -> two conv-BN-ReLU -> max over ``k``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(in_channels, out_channels, 1, bias=False)
        self.conv2 = nn.Conv1d(out_channels, out_channels, 1, bias=False)
        self.bn1 = nn.BatchNorm1d(out_channels)
        self.bn2 = nn.BatchNorm1d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        b, s, k, c = x.shape
        x = x.permute(0, 1, 3, 2).reshape(b * s, c, k)
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return x.amax(dim=-1).view(b, s, -1).permute(0, 2, 1)  # (B, C_out, S)


class DenseSelfAttention(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.q_conv = nn.Conv1d(channels, channels // 4, 1, bias=False)
        self.k_conv = nn.Conv1d(channels, channels // 4, 1, bias=False)
        self.q_conv.weight = self.k_conv.weight
        self.v_conv = nn.Conv1d(channels, channels, 1)
        self.trans_conv = nn.Conv1d(channels, channels, 1)
        self.after_norm = nn.BatchNorm1d(channels)

    def attend(self, x: Tensor) -> Tensor:
        q = self.q_conv(x).permute(0, 2, 1)  # (B, N, C/4)
        energy = torch.bmm(q, self.k_conv(x))  # (B, N, N)
        attn = torch.softmax(energy, dim=-1)
        attn = attn / (1e-9 + attn.sum(dim=1, keepdim=True))
        return torch.bmm(self.v_conv(x), attn)  # (B, C, N)

    def forward(self, x: Tensor) -> Tensor:
        return x + F.relu(self.after_norm(self.trans_conv(x - self.attend(x))))


class DenseExternalAttention(DenseSelfAttention):
    def __init__(self, channels: int, memory_units: int = 64) -> None:
        nn.Module.__init__(self)
        self.in_conv = nn.Conv1d(channels, channels, 1)
        self.mk = nn.Conv1d(channels, memory_units, 1, bias=False)
        self.mv = nn.Conv1d(memory_units, channels, 1, bias=False)
        self.trans_conv = nn.Conv1d(channels, channels, 1)
        self.after_norm = nn.BatchNorm1d(channels)

    def attend(self, x: Tensor) -> Tensor:
        attn = torch.softmax(self.mk(self.in_conv(x)), dim=-1)  # (B, S, N): over points
        attn = attn / (1e-9 + attn.sum(dim=1, keepdim=True))  # over memory units
        return self.mv(attn)


class PointTransformerLast(nn.Module):
    def __init__(self, channels: int = 256, attention: str = "self", memory_units: int = 64):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, 1, bias=False)
        self.conv2 = nn.Conv1d(channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm1d(channels)
        self.bn2 = nn.BatchNorm1d(channels)
        for i in range(1, 5):
            layer = (
                DenseSelfAttention(channels)
                if attention == "self"
                else DenseExternalAttention(channels, memory_units)
            )
            setattr(self, f"sa{i}", layer)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        outs = []
        for i in range(1, 5):
            x = getattr(self, f"sa{i}")(x)
            outs.append(x)
        return torch.cat(outs, dim=1)


class DensePCT(nn.Module):
    """The research-style dense PCT classifier. Input ``(B, 3, N)``, output ``(B, classes)``."""

    def __init__(self, num_classes: int = 40, attention: str = "self", memory_units: int = 64):
        super().__init__()
        self.conv1 = nn.Conv1d(3, 64, 1, bias=False)
        self.conv2 = nn.Conv1d(64, 64, 1, bias=False)
        self.bn1 = nn.BatchNorm1d(64)
        self.bn2 = nn.BatchNorm1d(64)
        self.gather_local_0 = LocalOp(128, 128)
        self.gather_local_1 = LocalOp(256, 256)
        self.pt_last = PointTransformerLast(256, attention, memory_units)
        self.conv_fuse = nn.Sequential(
            nn.Conv1d(1280, 1024, 1, bias=False), nn.BatchNorm1d(1024), nn.LeakyReLU(0.2)
        )
        self.linear1 = nn.Linear(1024, 512, bias=False)
        self.bn6 = nn.BatchNorm1d(512)
        self.dp1 = nn.Dropout(0.5)
        self.linear2 = nn.Linear(512, 256)
        self.bn7 = nn.BatchNorm1d(256)
        self.dp2 = nn.Dropout(0.5)
        self.linear3 = nn.Linear(256, num_classes)

    @staticmethod
    def sample_and_group(npoint: int, k: int, xyz: Tensor, feats: Tensor):
        idx = dense_fps(xyz, npoint)
        new_xyz = gather(xyz, idx)  # (B, S, 3)
        centre_feats = gather(feats, idx)  # (B, S, C)
        grouped = gather(feats, dense_knn(k, xyz, new_xyz))  # (B, S, k, C)
        centre = centre_feats.unsqueeze(2).expand_as(grouped)
        return new_xyz, torch.cat([grouped - centre, centre], dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        xyz = x.permute(0, 2, 1)
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        new_xyz, grouped = self.sample_and_group(512, 32, xyz, x.permute(0, 2, 1))
        feature_0 = self.gather_local_0(grouped)
        _, grouped = self.sample_and_group(256, 32, new_xyz, feature_0.permute(0, 2, 1))
        feature_1 = self.gather_local_1(grouped)
        x = torch.cat([self.pt_last(feature_1), feature_1], dim=1)
        x = self.conv_fuse(x).amax(dim=-1)
        x = self.dp1(F.leaky_relu(self.bn6(self.linear1(x)), 0.2))
        x = self.dp2(F.leaky_relu(self.bn7(self.linear2(x)), 0.2))
        return self.linear3(x)
