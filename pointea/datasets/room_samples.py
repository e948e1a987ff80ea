"""Training samples of whole rooms: random points of random rooms (the S3DIS recipe).

:class:`RoomSamples` turns a set of rooms (an :class:`~pointea.datasets.S3DIS` split) into
an indexable stream of fixed-size samples: sample ``i`` picks a room at random and draws
``num_points`` of its points uniformly without replacement (with replacement when the
room is smaller). The features are computed in the whole room's frame
(:func:`~pointea.scene_features.room_features`: centred xyz, colour, location normalised
to the room) before sampling, so a sample sees the same inputs as whole-room inference.
All draws come from torch's global CPU generator: wrapped in
:class:`~pointea.engine.seeding.EpochSeededDataset`, sample ``i`` of epoch ``e`` is the
same on any number of workers or processes, and a resumed run repeats it.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torch_geometric.data import Data

from ..errors import InputError
from ..scene_features import room_features

__all__ = ["RoomSamples"]


class RoomSamples(Dataset):
    """``length`` random samples of ``num_points`` points from the rooms of ``rooms``.

    Args:
        rooms: a room dataset with ``len`` and ``raw(i)`` (``xyz``, ``rgb``, ``label``).
        num_points: points per sample.
        length: samples per epoch (steps per epoch x batch size).
        cache_rooms: rooms whose features are kept in memory (least recently used).

    Each sample is a ``Data`` with ``pos`` ``(num_points, 3)``, ``x`` ``(num_points, 6)``
    and ``y`` ``(num_points,)``.
    """

    def __init__(self, rooms, num_points: int, length: int, cache_rooms: int = 32) -> None:
        if len(rooms) == 0:
            raise InputError(f"{rooms!r}: holds no rooms to train on")
        if num_points < 1 or length < 1:
            raise InputError(f"num_points and length must be >= 1, got {num_points}, {length}")
        self.rooms, self.num_points, self.length = rooms, num_points, length
        self.cache_rooms = cache_rooms
        self._cache: OrderedDict[int, tuple[Tensor, Tensor, Tensor]] = OrderedDict()

    def __len__(self) -> int:
        return self.length

    def room(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        """``(pos, x, y)`` of every point of room ``i`` (room-frame features)."""
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        r = self.rooms.raw(i)
        pos, x = room_features(torch.from_numpy(r["xyz"]), torch.from_numpy(r["rgb"]))
        item = (pos, x, torch.from_numpy(r["label"]).long())
        self._cache[i] = item
        if len(self._cache) > self.cache_rooms:
            self._cache.popitem(last=False)
        return item

    def __getitem__(self, index: int) -> Data:
        if not 0 <= index < self.length:
            raise IndexError(f"sample {index} out of range (length {self.length})")
        room = int(torch.randint(len(self.rooms), ()))
        pos, x, y = self.room(room)
        n = pos.size(0)
        if n >= self.num_points:
            idx = torch.randperm(n)[: self.num_points]
        else:
            idx = torch.randint(n, (self.num_points,))
        return Data(pos=pos[idx], x=x[idx], y=y[idx])

    def __repr__(self) -> str:
        return f"RoomSamples({self.rooms!r}, num_points={self.num_points}, length={self.length})"
