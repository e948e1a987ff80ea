"""The per-point inputs of a scene segmenter, built from a room's coordinates and colours.

PointNet's S3DIS setup (Qi et al., CVPR 2017, section 5.1 / supplementary: "XYZ, RGB and
normalized location as to the room (from 0 to 1)"), which DGCNN (Wang et al., 2019) kept.
Plain tensor arithmetic, shared by the training samples
(:class:`~pointea.datasets.room_samples.RoomSamples`), the scene model's whole-room pass
(:func:`~pointea.models.semseg.room_logits`) and the block protocol
(:func:`~pointea.inference.blocks.block_vote_logits`), so all of them see the same inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .errors import InputError

__all__ = ["room_features"]


def room_features(xyz: Tensor, rgb: Tensor) -> tuple[Tensor, Tensor]:
    """``(pos, x)`` of a room: centred coordinates and ``[rgb, normalised location]``.

    * ``pos``: the coordinates centred on the room's x-y centre, z above its floor;
    * ``x[:, 0:3]``: the colour in [0, 1];
    * ``x[:, 3:6]``: the location normalised to the room's bounding box, in [0, 1].

    Args:
        xyz: ``(N, 3)`` coordinates in metres.
        rgb: ``(N, 3)`` colours, ``uint8`` (0..255) or floats in [0, 1].

    Returns:
        ``pos`` ``(N, 3)`` float32 and ``x`` ``(N, 6)`` float32.
    """
    xyz = torch.as_tensor(xyz)
    rgb = torch.as_tensor(rgb)
    if xyz.dim() != 2 or xyz.size(1) != 3 or xyz.size(0) == 0:
        raise InputError(f"xyz: expected shape (num_points >= 1, 3), got {tuple(xyz.shape)}")
    if rgb.shape != xyz.shape:
        raise InputError(f"rgb: expected shape {tuple(xyz.shape)}, got {tuple(rgb.shape)}")
    xyz = xyz.float()
    colour = rgb.float() / 255.0 if not rgb.is_floating_point() else rgb.float()
    lo, hi = xyz.amin(dim=0), xyz.amax(dim=0)
    shift = torch.stack([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
    unit = (xyz - lo) / (hi - lo).clamp(min=1e-6)
    return xyz - shift, torch.cat([colour, unit], dim=1)
