"""The block protocol: PointNet's columns (1 m every 1 m), every point scored, and the
two input frames."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pointea.errors import InputError
from pointea.inference.blocks import block_groups, block_vote_logits


class Recorder(nn.Module):
    """Logits from the inputs' first coordinate; keeps every input it was given."""

    num_classes = 3

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def forward(self, pos, x, batch):
        self.calls.append((pos, x, batch))
        return torch.stack([pos[:, 0], -pos[:, 0], pos[:, 2]], dim=1) + self.w


def _room(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    xyz = torch.rand(n, 3, generator=g) * torch.tensor([2.5, 1.8, 3.0]) + torch.tensor(
        [10.0, -4.0, 0.2]
    )
    rgb = torch.randint(0, 256, (n, 3), generator=g, dtype=torch.uint8)
    return xyz, rgb


def test_columns_follow_pointnets_room2blocks_at_its_test_stride():
    xyz, _ = _room()
    groups = block_groups(xyz[:, :2], num_points=64)
    # 2.5 m x 1.8 m: ceil((2.5 - 1) / 1) + 1 = 3 by ceil((1.8 - 1) / 1) + 1 = 2 columns
    centres = {tuple(round(float(v), 6) for v in c) for _, c in groups}
    assert len(centres) == 6
    covered = torch.cat([g for g, _ in groups]).unique()
    assert covered.numel() == xyz.size(0)  # every point is in some group
    assert all(g.numel() == 64 for g, _ in groups)
    # the training stride 0.5 m gives overlapping columns: 4 x 3
    half = {tuple(round(float(v), 6) for v in c) for _, c in block_groups(xyz[:, :2], stride=0.5)}
    assert len(half) == 12


def test_every_point_is_scored_and_the_frames_differ_only_in_x_and_y():
    xyz, rgb = _room()
    room, block = Recorder().eval(), Recorder().eval()
    pr = block_vote_logits(room, xyz, rgb, num_points=64)
    pb = block_vote_logits(block, xyz, rgb, num_points=64, frame="block")
    assert pr.shape == pb.shape == (600, 3)
    assert bool((pr.sum(1) >= 1 - 1e-5).all()) and bool((pb.sum(1) >= 1 - 1e-5).all())
    pos_r = torch.cat([c[0] for c in room.calls])
    pos_b = torch.cat([c[0] for c in block.calls])
    # room frame: centred on the room in x, y (the 2.5 m room spans about +-1.25)
    assert float(pos_r[:, 0].abs().max()) > 1.0
    # PointNet's frame: centred on the 1 m block
    assert float(pos_b[:, :2].abs().max()) <= 0.5 + 1e-5
    torch.testing.assert_close(pos_r[:, 2], pos_b[:, 2])  # z above the floor in both
    torch.testing.assert_close(
        torch.cat([c[1] for c in room.calls]), torch.cat([c[1] for c in block.calls])
    )


def test_bad_arguments_are_refused():
    xyz, rgb = _room(50)
    with pytest.raises(InputError, match="eval mode"):
        block_vote_logits(Recorder().train(), xyz, rgb)
    with pytest.raises(InputError, match="frame"):
        block_vote_logits(Recorder().eval(), xyz, rgb, frame="corner")
    with pytest.raises(InputError, match="unscored"):
        block_groups(xyz[:, :2], block_size=1.0, stride=1.5)


def test_block_voting_builds_no_autograd_graph():
    xyz, rgb = _room(100)
    model = Recorder().eval()
    assert not block_vote_logits(model, xyz, rgb, num_points=32).requires_grad
