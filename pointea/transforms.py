"""Point-cloud transforms that PyG's ``torch_geometric.transforms`` does not provide.

Use PyG's own for everything else (``Compose``, ``RandomRotate``, ``RandomJitter``,
``RandomFlip``, ``NormalizeScale`` ...). Each class here works on one
:class:`~torch_geometric.data.Data` and never modifies the input: PyG's ``BaseTransform``
hands ``forward`` a shallow copy, and every method here builds new tensors instead of
writing into the cached ones (``data.pos *= s`` would silently corrupt an
``InMemoryDataset``'s stored samples).

Randomness comes from torch's global generator, so ``torch.manual_seed`` and PyG / torch
data-loader worker seeding make augmentation reproducible.
"""

from __future__ import annotations

import math

import torch
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from .errors import InputError

__all__ = ["PCTScaleShift", "RandomPointDropout", "SubsamplePoints", "NormalizeUnitSphere"]


def _pos(data: Data, name: str) -> torch.Tensor:
    pos = getattr(data, "pos", None)
    if pos is None or pos.dim() != 2 or pos.size(-1) != 3:
        shape = None if pos is None else tuple(pos.shape)
        raise InputError(f"{name}: data.pos must be a (N, 3) tensor, got {shape}")
    return pos


def _index_points(data: Data, index: torch.Tensor) -> Data:
    """Select rows ``index`` of every per-point attribute of ``data`` (new tensors)."""
    n = data.pos.size(0)
    keys = [
        key
        for key in data.keys()  # noqa: SIM118 (iterating a Data yields pairs)
        if torch.is_tensor(data[key])
        and data[key].dim() > 0
        and data[key].size(0) == n
        and (key in ("pos", "x", "y", "normal") or data.is_node_attr(key))
    ]  # decided before any change: num_nodes follows the first resized attribute
    for key in keys:
        data[key] = data[key].index_select(0, index.to(data[key].device))
    return data


class PCTScaleShift(BaseTransform):
    r"""PCT's anisotropic scale and shift: ``pos * s + t`` with one ``s`` and ``t`` per axis.

    ``s ~ U[scale]`` and ``t ~ U[shift]`` (each of shape (3,)), drawn per call; the defaults
    are PCT's training recipe (``U[2/3, 3/2]``, ``U[-0.2, 0.2]``). If ``data.x`` holds
    normals (``normals=True`` and ``x`` is (N, 3)), they are transformed as normals are
    under an anisotropic scale (``n / s``, renormalised).

    Args:
        scale: (low, high) of the per-axis scale factor.
        shift: (low, high) of the per-axis translation.
        normals: treat a (N, 3) ``data.x`` as unit normals.

    Shapes:
        ``pos`` (N, 3) -> (N, 3).
    """

    def __init__(
        self,
        scale: tuple[float, float] = (2.0 / 3.0, 3.0 / 2.0),
        shift: tuple[float, float] = (-0.2, 0.2),
        normals: bool = True,
    ) -> None:
        if not 0 < scale[0] <= scale[1]:
            raise InputError(f"scale must satisfy 0 < low <= high, got {scale}")
        if shift[0] > shift[1]:
            raise InputError(f"shift must satisfy low <= high, got {shift}")
        self.scale = (float(scale[0]), float(scale[1]))
        self.shift = (float(shift[0]), float(shift[1]))
        self.normals = normals

    def forward(self, data: Data) -> Data:
        pos = _pos(data, "PCTScaleShift")
        s = torch.empty(3, dtype=pos.dtype, device=pos.device).uniform_(*self.scale)
        t = torch.empty(3, dtype=pos.dtype, device=pos.device).uniform_(*self.shift)
        data.pos = pos * s + t
        x = getattr(data, "x", None)
        if self.normals and x is not None and x.dim() == 2 and x.size(-1) == 3:
            n = x / s.to(x.dtype)
            data.x = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return data

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(scale=({self.scale[0]:.4g}, {self.scale[1]:.4g}), "
            f"shift=({self.shift[0]:.4g}, {self.shift[1]:.4g}), normals={self.normals})"
        )


class RandomPointDropout(BaseTransform):
    r"""Random point dropout (PointNet++'s augmentation, used by PCT's recipe).

    A ratio ``r ~ U[0, max_ratio]`` is drawn per call and each point is dropped with
    probability ``r`` (the first point is always kept).

    Args:
        max_ratio: largest dropout ratio (PointNet++ uses 0.875).
        mode: ``"duplicate"`` replaces dropped points (and their per-point attributes:
            normals, part labels) with the first point, keeping ``N`` fixed as the
            published recipe does; ``"remove"`` deletes them.

    Shapes:
        ``pos`` (N, 3) -> (N, 3) for ``"duplicate"``, (N', 3) with N' <= N for ``"remove"``.
    """

    def __init__(self, max_ratio: float = 0.875, mode: str = "duplicate") -> None:
        if not 0.0 <= max_ratio < 1.0:
            raise InputError(f"max_ratio must be in [0, 1), got {max_ratio}")
        if mode not in ("duplicate", "remove"):
            raise InputError(f"mode must be 'duplicate' or 'remove', got {mode!r}")
        self.max_ratio = float(max_ratio)
        self.mode = mode

    def forward(self, data: Data) -> Data:
        pos = _pos(data, "RandomPointDropout")
        n = pos.size(0)
        if n == 0:
            return data
        ratio = float(torch.rand(()) * self.max_ratio)
        drop = torch.rand(n, device=pos.device) <= ratio
        drop[0] = False
        if not bool(drop.any()):
            return data
        if self.mode == "duplicate":
            index = torch.arange(n, device=pos.device)
            index = torch.where(drop, torch.zeros_like(index), index)
        else:
            index = (~drop).nonzero().view(-1)
        return _index_points(data, index)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_ratio={self.max_ratio}, mode={self.mode!r})"


class SubsamplePoints(BaseTransform):
    r"""Keep a fixed number of points: the first ``num``, a random subset, or FPS.

    (PyG's ``SamplePoints`` samples meshes and its ``FixedPoints`` only draws at random;
    the published recipe takes the *first* 1024 of the 2048 HDF5 points.)

    Args:
        num: number of points to keep.
        method: ``"first"`` (published recipe), ``"random"`` (without replacement) or
            ``"fps"`` (farthest point sampling via ``torch_cluster``).
        pad: when a cloud has fewer than ``num`` points, repeat random points to reach
            ``num`` (``True``) or raise :class:`~pointea.errors.InputError` (``False``).
        random_start: FPS starts from a random point (``False``: from point 0, deterministic).

    Shapes:
        ``pos`` (N, 3) -> (num, 3); every per-point attribute is indexed the same way.
    """

    METHODS = ("first", "random", "fps")

    def __init__(
        self, num: int, method: str = "first", pad: bool = True, random_start: bool = True
    ) -> None:
        if int(num) <= 0:
            raise InputError(f"num must be a positive integer, got {num}")
        if method not in self.METHODS:
            raise InputError(f"method must be one of {self.METHODS}, got {method!r}")
        self.num = int(num)
        self.method = method
        self.pad = pad
        self.random_start = random_start

    def forward(self, data: Data) -> Data:
        pos = _pos(data, "SubsamplePoints")
        n = pos.size(0)
        if n == 0:
            raise InputError("SubsamplePoints: the cloud has no points")
        if n < self.num:
            if not self.pad:
                raise InputError(
                    f"SubsamplePoints: cloud has {n} points, fewer than "
                    f"num={self.num} (pass pad=True to repeat points)"
                )
            extra = torch.randint(n, (self.num - n,), device=pos.device)
            index = torch.cat([torch.arange(n, device=pos.device), extra])
        elif n == self.num:
            return data
        elif self.method == "first":
            index = torch.arange(self.num, device=pos.device)
        elif self.method == "random":
            index = torch.randperm(n, device=pos.device)[: self.num]
        else:
            index = fps_indices(pos, self.num, random_start=self.random_start)
        return _index_points(data, index)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.num}, method={self.method!r})"


def fps_indices(pos: torch.Tensor, num: int, random_start: bool = True) -> torch.Tensor:
    """Indices of ``num`` farthest-point samples of one cloud ``pos`` (N, 3), N >= num."""
    from .ops import farthest_point_sample, layout_of

    layout = layout_of(None, pos.size(0), pos.device)
    index, _ = farthest_point_sample(pos, layout, num, random_start=random_start)
    return index


class NormalizeUnitSphere(BaseTransform):
    r"""Centre the cloud on its centroid and scale it into the unit sphere.

    ``pos' = (pos - mean(pos)) / max ||pos - mean(pos)||`` (ModelNet40's normalisation).
    Normals are unchanged by a uniform scale and a translation. A single-point or
    degenerate cloud is only centred.

    Shapes:
        ``pos`` (N, 3) -> (N, 3).
    """

    def forward(self, data: Data) -> Data:
        pos = _pos(data, "NormalizeUnitSphere")
        if pos.size(0) == 0:
            return data
        centred = pos - pos.mean(dim=0, keepdim=True)
        radius = centred.norm(dim=-1).max()
        if bool(radius > 0) and math.isfinite(float(radius)):
            centred = centred / radius
        data.pos = centred
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


__all__ += ["RandomPermute"]


class RandomPermute(BaseTransform):
    r"""Shuffle the order of the points (every per-point attribute alike).

    Training-time only: PCT's reference loader shuffles each training cloud every time
    it is read, and farthest point sampling starts at the cloud's first point, so the
    sampled centres change from epoch to epoch. Evaluation keeps the file order (a fixed
    first point). The permutation is drawn from torch's global generator (seeded per
    sample and epoch by the trainer).

    Shapes:
        ``pos`` (N, 3) -> (N, 3), the same rows in a random order.
    """

    def forward(self, data: Data) -> Data:
        pos = _pos(data, "RandomPermute")
        return _index_points(data, torch.randperm(pos.size(0), device=pos.device))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
