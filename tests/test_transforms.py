"""pointea.transforms: behaviour, ranges, reprs, and never modifying the input."""

from __future__ import annotations

import copy

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader
from torch_geometric.transforms import Compose

from pointea.errors import InputError
from pointea.transforms import (
    NormalizeUnitSphere,
    PCTScaleShift,
    RandomPermute,
    RandomPointDropout,
    SubsamplePoints,
)


def _seg(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Data(pos=torch.rand(n, 3, generator=g) * 2 - 1,
                x=torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=1),
                y=torch.arange(n), category=torch.tensor([3]))


def _cls(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Data(pos=torch.rand(n, 3, generator=g), y=torch.tensor([7]))


ALL = [
    PCTScaleShift(),
    RandomPointDropout(),
    RandomPointDropout(mode="remove"),
    SubsamplePoints(16),
    SubsamplePoints(16, "random"),
    SubsamplePoints(16, "fps"),
    SubsamplePoints(100),
    NormalizeUnitSphere(),
    RandomPermute(),
]


@pytest.mark.parametrize("t", ALL, ids=repr)
@pytest.mark.parametrize("make", [_seg, _cls])
def test_input_is_never_modified(t, make):
    data = make()
    before = copy.deepcopy(data)
    ptrs = {k: data[k].data_ptr() for k in data.keys()}  # noqa: SIM118 (Data yields pairs)
    for _ in range(5):
        out = t(data)
        assert out is not data
    for k in before.keys():  # noqa: SIM118
        assert torch.equal(data[k], before[k]), k
        assert data[k].data_ptr() == ptrs[k]
    assert set(data.keys()) == set(before.keys())


@pytest.mark.parametrize("t", ALL, ids=repr)
def test_reprs_name_the_arguments(t):
    r = repr(t)
    assert r.startswith(type(t).__name__ + "(") and "object at" not in r


def test_pct_scale_shift_ranges_and_normals():
    torch.manual_seed(0)
    d = _seg(n=2000)
    t = PCTScaleShift()
    for _ in range(20):
        out = t(d)
        # recover s and t per axis from two points (exact affine map)
        s = (out.pos[1] - out.pos[0]) / (d.pos[1] - d.pos[0])
        shift = out.pos[0] - d.pos[0] * s
        assert ((s >= 2 / 3 - 1e-5) & (s <= 1.5 + 1e-5)).all()
        assert (shift.abs() <= 0.2 + 1e-5).all()
        torch.testing.assert_close(out.pos, d.pos * s + shift)
        torch.testing.assert_close(out.x.norm(dim=1), torch.ones(2000))
        # normal stays perpendicular to a transformed tangent: n' . (S v) == 0
        v = torch.linalg.cross(d.x, torch.tensor([[0.3, 0.5, 0.7]]).expand(2000, 3))
        assert (out.x * (v * s)).sum(1).abs().max() < 1e-4
        assert torch.equal(out.y, d.y)
    assert PCTScaleShift(normals=False)(d).x is d.x
    with pytest.raises(InputError):
        PCTScaleShift(scale=(0, 1))


def test_point_dropout_duplicate_keeps_size_and_labels_aligned():
    torch.manual_seed(1)
    d = _seg(n=500)
    dropped_any = False
    for _ in range(20):
        out = RandomPointDropout(max_ratio=0.8)(d)
        assert out.pos.shape == d.pos.shape and out.y.shape == d.y.shape
        # each row is either itself or a copy of row 0, consistently across attributes
        same = (out.pos == d.pos).all(1)
        first = (out.pos == d.pos[0]).all(1)
        assert (same | first).all()
        assert torch.equal(out.y[~same], torch.zeros(int((~same).sum()), dtype=torch.long))
        assert torch.equal(out.x[~same], d.x[0].expand(int((~same).sum()), 3))
        dropped_any |= bool((~same).any())
    assert dropped_any


def test_point_dropout_remove_keeps_labels_aligned():
    torch.manual_seed(2)
    d = _seg(n=500)
    out = RandomPointDropout(max_ratio=0.8, mode="remove")(d)
    assert out.pos.size(0) == out.y.size(0) == out.x.size(0) <= 500
    torch.testing.assert_close(out.pos, d.pos[out.y])
    assert out.category.tolist() == [3]
    c = RandomPointDropout(0.5, "remove")(_cls(200))
    assert c.y.tolist() == [7]
    assert RandomPointDropout(0.0)(d).pos.equal(d.pos)
    with pytest.raises(InputError):
        RandomPointDropout(1.0)


def test_subsample_first_random_fps():
    d = _seg(n=64)
    first = SubsamplePoints(16)(d)
    assert torch.equal(first.pos, d.pos[:16]) and torch.equal(first.y, torch.arange(16))
    rnd = SubsamplePoints(16, "random")(d)
    assert rnd.y.unique().numel() == 16 and torch.equal(rnd.pos, d.pos[rnd.y])
    fps = SubsamplePoints(16, "fps", random_start=False)(d)
    assert fps.y.unique().numel() == 16 and torch.equal(fps.pos, d.pos[fps.y])
    assert int(fps.y[0]) == 0
    # FPS spreads points out: its minimum pairwise distance beats the first-16 subset's
    def spread(p):
        dist = torch.cdist(p, p) + torch.eye(p.size(0)) * 10
        return float(dist.min())
    assert spread(fps.pos) > spread(first.pos)
    same = SubsamplePoints(64)(d)
    assert torch.equal(same.pos, d.pos)


def test_subsample_pads_or_refuses_small_clouds():
    d = _cls(n=10)
    out = SubsamplePoints(32)(d)
    assert out.pos.shape == (32, 3) and torch.equal(out.pos[:10], d.pos)
    assert out.y.tolist() == [7]
    with pytest.raises(InputError, match="fewer than num=32"):
        SubsamplePoints(32, pad=False)(d)
    with pytest.raises(InputError):
        SubsamplePoints(0)
    with pytest.raises(InputError):
        SubsamplePoints(8, method="grid")


def test_normalize_unit_sphere():
    d = _cls(n=100)
    d.pos = d.pos * 7 + 3
    out = NormalizeUnitSphere()(d)
    torch.testing.assert_close(out.pos.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    assert abs(float(out.pos.norm(dim=1).max()) - 1) < 1e-5
    one = NormalizeUnitSphere()(Data(pos=torch.ones(1, 3)))
    assert torch.equal(one.pos, torch.zeros(1, 3))


def test_bad_pos_is_an_input_error():
    with pytest.raises(InputError, match="data.pos"):
        PCTScaleShift()(Data(pos=torch.zeros(5, 2)))


def test_pipeline_in_a_loader_batches():
    torch.manual_seed(0)
    t = Compose([SubsamplePoints(32), PCTScaleShift(), RandomPointDropout()])
    data = [t(_cls(64, seed=i)) for i in range(8)]
    batch = next(iter(DataLoader(data, batch_size=8)))
    assert batch.pos.shape == (256, 3) and batch.y.shape == (8,)


def test_random_permute_moves_every_per_point_attribute_together():
    torch.manual_seed(0)
    d = _seg(n=50)  # y = arange: the output's y is the permutation
    outs = [RandomPermute()(d) for _ in range(2)]
    for out in outs:
        perm = out.y
        assert sorted(perm.tolist()) == list(range(50))
        assert torch.equal(out.pos, d.pos[perm]) and torch.equal(out.x, d.x[perm])
        assert torch.equal(out.category, d.category)
    assert not torch.equal(outs[0].y, outs[1].y)  # a fresh order per call
    assert not torch.equal(outs[0].y, torch.arange(50))
