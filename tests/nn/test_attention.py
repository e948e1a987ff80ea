"""Attention layers: packed == naive per-cloud references, normalisation properties."""

import pytest
import torch
from pointea_testing import make_batch, naive_external

from pointea.errors import InputError
from pointea.nn import ExternalAttention, NeighborEmbedding, OffsetAttention, SelfAttention
from pointea.ops import CloudLayout, check_cloud


def naive_self(layer: SelfAttention, x: torch.Tensor) -> torch.Tensor:
    """PCT self-attention for ONE cloud, as in the paper's formula."""
    q = x @ layer.qk_proj.weight.t()
    v = x @ layer.v_proj.weight.t() + layer.v_proj.bias
    energy = q @ q.t()
    attn = torch.softmax(energy, dim=-1)
    attn = attn / (1e-9 + attn.sum(dim=0, keepdim=True))
    return attn.t() @ v


EA_VARIANTS = [
    dict(),
    dict(heads=4),
    dict(tie_memories=True),
    dict(in_proj=False, memory_units=16),
]


@pytest.mark.parametrize("kwargs", EA_VARIANTS)
@pytest.mark.parametrize("sizes", [[17, 17, 17], [5, 23, 11]])
def test_external_attention_matches_naive(kwargs, sizes):
    _, batch, x = make_batch(sizes, channels=16)
    layer = ExternalAttention(16, **{"memory_units": 8, **kwargs})
    out = layer(x, batch)
    assert out.shape == x.shape
    for b in range(len(sizes)):
        sel = batch == b
        assert torch.allclose(out[sel], naive_external(layer, x[sel]), atol=1e-5)


@pytest.mark.parametrize("sizes", [[9, 9], [4, 13, 7]])
def test_self_attention_matches_naive(sizes):
    _, batch, x = make_batch(sizes, channels=16)
    layer = SelfAttention(16)
    out = layer(x, batch)
    for b in range(len(sizes)):
        sel = batch == b
        assert torch.allclose(out[sel], naive_self(layer, x[sel]), atol=1e-5)


def test_dense_fast_path_equals_packed_path():
    _, batch, x = make_batch([12, 12, 12], channels=16)
    dense = check_cloud(torch.zeros(36, 3), batch)
    assert dense.uniform == 12
    packed = CloudLayout(batch, 3, None)
    for layer in (ExternalAttention(16, 8, heads=2), SelfAttention(16)):
        assert torch.allclose(layer(x, layout=dense), layer(x, layout=packed), atol=1e-5)


def test_double_normalisation_properties():
    _, batch, x = make_batch([6, 10], channels=8)
    layer = ExternalAttention(8, memory_units=5)
    logits = layer.logits(x)[:, 0]  # (N, S)
    for b in range(2):
        sel = batch == b
        first = torch.softmax(logits[sel], dim=0)
        # per cloud and memory unit, the weights over the cloud's points sum to one
        assert torch.allclose(first.sum(0), torch.ones(5), atol=1e-5)
        second = first / (1e-9 + first.sum(1, keepdim=True))
        # afterwards each point's weights over the memory units sum to one
        assert torch.allclose(second.sum(1), torch.ones(int(sel.sum())), atol=1e-5)
        expect = second @ layer.memory_value.weight.t()
        assert torch.allclose(layer(x, batch)[sel], expect, atol=1e-5)


def test_external_attention_is_not_softmax_over_packed_tensor():
    # a cloud's output must not change when another cloud joins the batch
    _, _, x = make_batch([10], channels=8)
    other = torch.randn(30, 8) * 5
    layer = ExternalAttention(8, memory_units=4)
    alone = layer(x)
    both = layer(torch.cat([x, other]), torch.tensor([0] * 10 + [1] * 30))
    assert torch.allclose(alone, both[:10], atol=1e-6)


def test_tied_memories_share_one_parameter():
    layer = ExternalAttention(8, memory_units=4, tie_memories=True)
    assert layer.memory_value is None
    untied = ExternalAttention(8, memory_units=4)
    n_tied = sum(p.numel() for p in layer.parameters())
    assert sum(p.numel() for p in untied.parameters()) - n_tied == 8 * 4


def test_attention_rejects_wrong_channels():
    with pytest.raises(InputError, match="expected shape"):
        ExternalAttention(8)(torch.zeros(4, 7))
    with pytest.raises(InputError, match="expected shape"):
        SelfAttention(8)(torch.zeros(4, 7))
    with pytest.raises(InputError, match="attention"):
        OffsetAttention(8, attention="cross")


def naive_neighbor_embedding(stage, x, pos, batch):
    """Concatenate [f_nbr - f_centre, f_centre] explicitly, then LBR, LBR, max."""
    layout = check_cloud(pos, batch)
    from pointea.ops import farthest_point_sample, knn_groups

    centres, clayout = farthest_point_sample(pos, layout, stage.num_samples)
    ci, pi, _ = knn_groups(pos, layout, pos[centres], clayout, stage.k)
    f_c = x[centres][ci]
    edge = torch.cat([x[pi] - f_c, f_c], dim=-1)
    h = torch.relu(stage.norm1(stage.lin1(edge)))
    h = torch.relu(stage.norm2(stage.lin2(h)))
    out = torch.stack([h[ci == c].max(0).values for c in range(centres.numel())])
    return out, pos[centres]


@pytest.mark.parametrize("sizes", [[64, 64], [64, 12, 40]])
def test_neighbor_embedding_equals_explicit_concatenation(sizes):
    pos, batch, x = make_batch(sizes, channels=6)
    stage = NeighborEmbedding(6, 10, num_samples=16, k=8).eval()
    out, centre_pos, layout = stage(x, pos, batch)
    ref, ref_pos = naive_neighbor_embedding(stage, x, pos, batch)
    assert torch.allclose(out, ref, atol=1e-5)
    assert torch.equal(centre_pos, ref_pos)
    assert layout.sizes.tolist() == [min(16, s) for s in sizes]
