import pytest
import torch
from conftest import make_batch

from pointea.errors import InputError
from pointea.ops import (
    CloudLayout,
    check_cloud,
    farthest_point_sample,
    knn_groups,
    layout_of,
    segment_logsumexp,
    segment_softmax,
)


def test_layout_uniform_and_ragged():
    _, batch = make_batch([5, 5, 5])
    assert layout_of(batch, 15, batch.device).uniform == 5
    _, batch = make_batch([5, 3])
    layout = layout_of(batch, 8, batch.device)
    assert layout.uniform is None and layout.num_clouds == 2
    assert layout.sizes.tolist() == [5, 3]
    assert layout_of(None, 7, batch.device).uniform == 7


def test_fps_counts_and_first_point():
    pos, batch = make_batch([100, 20, 50])
    layout = check_cloud(pos, batch)
    idx, centre_layout = farthest_point_sample(pos, layout, 32)
    # a cloud with fewer points than asked keeps all of them
    assert centre_layout.sizes.tolist() == [32, 20, 32]
    assert centre_layout.uniform is None
    # each centre belongs to its own cloud, each cloud starts at its first point
    assert torch.equal(batch[idx], centre_layout.batch)
    starts = [0, 100, 120]
    firsts = [int(idx[centre_layout.batch == b][0]) for b in range(3)]
    assert firsts == starts
    # no point is picked twice
    assert idx.unique().numel() == idx.numel()


def test_fps_is_farthest_first():
    # a naive FPS on one cloud gives the same centres
    pos, _ = make_batch([64])
    layout = check_cloud(pos)
    idx, _ = farthest_point_sample(pos, layout, 10)
    chosen = [0]
    dist = ((pos - pos[0]) ** 2).sum(-1)
    for _ in range(9):
        nxt = int(dist.argmax())
        chosen.append(nxt)
        dist = torch.minimum(dist, ((pos - pos[nxt]) ** 2).sum(-1))
    assert idx.tolist() == chosen


@pytest.mark.parametrize("sizes", [[40, 40], [40, 10]])
def test_knn_groups_are_nearest_in_same_cloud(sizes):
    pos, batch = make_batch(sizes)
    layout = check_cloud(pos, batch)
    centres, clayout = farthest_point_sample(pos, layout, 8)
    ci, pi, k_uniform = knn_groups(pos, layout, pos[centres], clayout, 16)
    assert k_uniform == (16 if min(sizes) >= 16 else None)
    assert torch.equal(batch[pi], clayout.batch[ci])
    for c in range(centres.numel()):
        mine = pi[ci == c]
        same = (batch == clayout.batch[c]).nonzero().flatten()
        d = ((pos[same] - pos[centres[c]]) ** 2).sum(-1)
        expect = same[d.argsort()[: min(16, same.numel())]]
        assert set(mine.tolist()) == set(expect.tolist())


def test_segment_softmax_per_cloud_and_dense_equal():
    src = torch.randn(30, 4)
    _, batch = make_batch([10, 10, 10])
    dense = segment_softmax(src, layout_of(batch, 30, src.device))
    packed = segment_softmax(src, CloudLayout(batch, 3, None))
    assert torch.allclose(dense, packed, atol=1e-6)
    for b in range(3):
        part = packed[batch == b]
        assert torch.allclose(part.sum(0), torch.ones(4), atol=1e-5)
        assert torch.allclose(part, torch.softmax(src[batch == b], 0), atol=1e-6)
    lse = segment_logsumexp(src, CloudLayout(batch, 3, None))
    assert torch.allclose(lse[1], torch.logsumexp(src[batch == 1], 0), atol=1e-5)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: (torch.full((4, 3), float("nan")), None), "non-finite"),
        (lambda: (torch.tensor([[0.0, 0, float("inf")]]), None), "non-finite"),
        (lambda: (torch.zeros(0, 3), None), "empty"),
        (lambda: (torch.zeros(4, 2), None), "shape"),
        (lambda: (torch.zeros(4, 3, dtype=torch.long), None), "floating"),
        (lambda: (torch.zeros(4, 3), torch.tensor([0, 1, 0, 1])), "sorted"),
        (lambda: (torch.zeros(4, 3), torch.tensor([0, 0, 2, 2])), "cloud 1 is empty"),
        (lambda: (torch.zeros(4, 3), torch.tensor([0, 0, 1])), "entries"),
        (lambda: (torch.zeros(4, 3), torch.tensor([0.0, 0, 1, 1])), "integer"),
    ],
)
def test_check_cloud_rejects_bad_input(make, message):
    pos, batch = make()
    with pytest.raises(InputError, match=message):
        check_cloud(pos, batch)


def test_check_cloud_rejects_bad_features():
    pos, batch = make_batch([3, 3])
    with pytest.raises(ValueError, match="x: expected 3 channels"):
        check_cloud(pos, batch, torch.zeros(6, 5), x_channels=3)
    with pytest.raises(ValueError, match="x: expected shape"):
        check_cloud(pos, batch, torch.zeros(5, 3))
