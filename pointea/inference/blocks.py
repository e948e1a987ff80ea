"""The block protocol of the S3DIS literature: 1 m columns, 4096 points per forward.

PointNet's released test (``charlesq34/pointnet`` ``sem_seg/batch_inference.py``, last
changed in fe0c73f on master) cuts each room with ``indoor3d_util.room2blocks_wrapper_normalized``
at its defaults, 1 m x 1 m columns every **1 m** (no overlap; the 0.5 m stride of
``gen_indoor3d_h5.py`` is its *training* stride). Its inputs per point are nine numbers:

* x, y minus the block's centre (the smallest x, y of the block's sampled points plus half
  the block size), z as in the room shifted to its minimum (``collect_point_label``);
* the colour in [0, 1];
* the location normalised to the room, ``xyz / max`` of the shifted room.

:func:`block_vote_logits` covers the room with the same columns. It differs from
PointNet's test on purpose in what is scored: PointNet scores the 4096 points it samples
from each block and skips blocks of fewer than 100 points; here every point of every
block is predicted (the block's points are shuffled and cut into groups of
``num_points``, the last padded with repeats) and the softmax probabilities are summed
over the blocks that hold a point, so every point of the room is scored, as the
whole-room pass does.

The coordinates the model sees (``frame``): ``"room"`` (default) keeps pointea's
room-frame inputs (:func:`~pointea.scene_features.room_features`: x, y centred on the
room, z above its floor), the inputs pointea's scene models are trained on (whole-room
samples, :class:`~pointea.datasets.room_samples.RoomSamples`); only the context the
attention sees is restricted to the block. ``"block"`` gives PointNet's inputs (x, y
centred on the block), for a model trained on PointNet-style blocks. A model trained on
room-frame samples and tested on block-centred inputs would be tested on a shift of its
inputs it never saw, so the block numbers of pointea's recipe measure the effect of the
smaller context, not the PointNet protocol; they are not to be put beside PointNet's
numbers as the same measurement.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import InputError
from ..scene_features import room_features

__all__ = ["block_groups", "block_vote_logits"]


def block_groups(
    xy: Tensor,
    block_size: float = 1.0,
    stride: float = 1.0,
    num_points: int = 4096,
    seed: int = 0,
) -> list[tuple[Tensor, Tensor]]:
    """The groups of point indices the block protocol feeds the model.

    Columns of ``block_size`` every ``stride`` from the smallest x and y (as
    ``room2blocks``: ``ceil((extent - block_size) / stride) + 1`` per axis, points on a
    boundary in both columns). Each column's points are shuffled (seeded) and cut into
    groups of ``num_points``, the last padded with repeats.

    Args:
        xy: ``(N, 2)`` x and y of the room's points.

    Returns:
        ``(indices (num_points,), block centre (2,))`` per group; the centre is the
        smallest x, y of the column's points plus ``block_size / 2``.
    """
    if block_size <= 0 or stride <= 0 or num_points < 1:
        raise InputError("block_size, stride and num_points must be positive")
    if stride > block_size:
        raise InputError(f"stride {stride} > block_size {block_size} leaves points unscored")
    gen = torch.Generator().manual_seed(seed)
    lo, hi = xy.amin(dim=0), xy.amax(dim=0)
    steps = [max(int(np.ceil(float(hi[d] - lo[d] - block_size) / stride)), 0) + 1 for d in (0, 1)]
    out: list[tuple[Tensor, Tensor]] = []
    for i in range(steps[0]):
        for j in range(steps[1]):
            corner = lo + torch.tensor([i * stride, j * stride], device=xy.device, dtype=xy.dtype)
            inside = ((xy >= corner) & (xy <= corner + block_size)).all(dim=1)
            idx = inside.nonzero().flatten()
            if idx.numel() == 0:
                continue
            centre = xy[idx].amin(dim=0) + block_size / 2
            idx = idx[torch.randperm(idx.numel(), generator=gen).to(xy.device)]
            for start in range(0, idx.numel(), num_points):
                g = idx[start : start + num_points]
                if g.numel() < num_points:
                    pad = torch.randint(g.numel(), (num_points - g.numel(),), generator=gen)
                    g = torch.cat([g, g[pad.to(xy.device)]])
                out.append((g, centre))
    return out


@torch.no_grad()
def block_vote_logits(
    model: nn.Module,
    xyz: Tensor,
    rgb: Tensor,
    block_size: float = 1.0,
    stride: float = 1.0,
    num_points: int = 4096,
    batch_blocks: int = 8,
    seed: int = 0,
    frame: str = "room",
) -> Tensor:
    """The block protocol: summed softmax probabilities ``(N, num_classes)`` per point.

    Args:
        model: a scene segmenter in eval mode, called as ``model(pos=, x=, batch=)``.
        xyz: ``(N, 3)`` coordinates in metres; rgb: ``(N, 3)`` colours (0..255 or 0..1).
        block_size / stride: the columns (PointNet's test: 1 m every 1 m).
        num_points: points per forward of one block (PointNet: 4096).
        batch_blocks: groups per forward.
        seed: the shuffle and padding draws.
        frame: ``"room"`` (room-frame coordinates, default) or ``"block"`` (x, y centred
            on the block, PointNet's inputs); see the module docstring.
    """
    if model.training:
        raise InputError("model: block voting needs eval mode (call model.eval())")
    if frame not in ("room", "block"):
        raise InputError(f"frame: expected 'room' or 'block', got {frame!r}")
    device = next(model.parameters()).device
    pos, x = room_features(xyz.to(device), rgb.to(device))
    groups = block_groups(pos[:, :2], block_size, stride, num_points, seed)
    probs = pos.new_zeros(pos.size(0), int(model.num_classes))
    for start in range(0, len(groups), batch_blocks):
        chunk = groups[start : start + batch_blocks]
        index = torch.cat([g for g, _ in chunk])
        batch = torch.arange(len(chunk), device=device).repeat_interleave(num_points)
        p_in = pos[index]
        if frame == "block":
            centres = torch.stack([c for _, c in chunk]).repeat_interleave(num_points, dim=0)
            p_in = torch.cat([p_in[:, :2] - centres, p_in[:, 2:]], dim=1)
        p = model(pos=p_in, x=x[index], batch=batch).softmax(dim=1)
        # a padded repeat votes once more for its point: harmless, as in the public code
        probs.index_add_(0, index, p.to(probs.dtype))  # float sums under autocast too
    return probs
