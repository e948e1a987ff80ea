"""The segmenters' public stages, and streaming reading the model only through them."""

import ast
import inspect

import pytest
import torch
import torch.nn.functional as F
from pointea_testing import nontrivial_segmenter

from pointea.errors import InputError
from pointea.models import create_model, streaming
from pointea.models.streaming import is_streamable, segment_large
from pointea.nn import LBR, OffsetAttention
from pointea.ops import layout_of


def _nontrivial(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
            m.weight.data.uniform_(-1.5, 1.5, generator=g)
            m.bias.data.uniform_(-0.3, 0.3, generator=g)
    return module.eval()


@pytest.mark.parametrize("negative_slope", [0.0, 0.2])
def test_lbr_folded_with_its_activation_is_the_eval_forward(negative_slope):
    layer = _nontrivial(LBR(6, 5, bias=True, negative_slope=negative_slope)).double()
    x = torch.randn(40, 6, dtype=torch.float64)
    weight, bias = layer.folded()
    with torch.no_grad():
        assert torch.allclose(layer.activation(F.linear(x, weight, bias)), layer(x))
        # fold() folds the batch norm into any map with the layer's outputs: a column
        # block's weight, and the shift once (with the bias)
        w1, w2 = layer.linear.weight.split([2, 4], dim=1)
        (a, _), (b, shift) = layer.fold(w1, None), layer.fold(w2, layer.linear.bias)
        pre = F.linear(x[:, :2], a) + F.linear(x[:, 2:], b, shift)
        assert torch.allclose(layer.activation(pre), layer(x))
    assert layer.out_channels == 5


@pytest.mark.parametrize("heads", [1, 2])
def test_offset_attention_folded_is_the_eval_forward(heads):
    layer = _nontrivial(OffsetAttention(16, memory_units=8, heads=heads)).double()
    x = torch.randn(50, 16, dtype=torch.float64)
    layout = layout_of(None, 50, x.device)
    weight, bias, read = layer.folded()
    with torch.no_grad():
        attn = layer.attention
        feats = attn.read_features(attn.normalise(attn.logits(x), layout))
        folded = x + layer.activation(F.linear(x, weight, bias) - F.linear(feats, read))
        assert torch.allclose(folded, layer(x))
    assert layer.is_external and layer.channels == 16


def test_offset_attention_with_self_attention_does_not_fold():
    layer = OffsetAttention(16, attention="self").eval()
    assert not layer.is_external
    with pytest.raises(InputError, match="external"):
        layer.folded()


def test_head_weights_split_the_first_head_layer():
    model = nontrivial_segmenter()
    fused = torch.randn(7, model.fuse.out_channels)
    context = torch.randn(7, model.head1.linear.in_features - model.fuse.out_channels)
    point, cloud, bias = model.head_weights()
    whole = model.head1.linear(torch.cat([fused, context], dim=1))
    split = F.linear(fused, point) + F.linear(context, cloud, bias)
    assert torch.allclose(split, whole, atol=1e-6)
    assert model.out_channels == 9


def test_head_is_the_stages_composed():
    model = nontrivial_segmenter()
    pos = torch.rand(120, 3)
    category = torch.tensor([2])
    layout = layout_of(None, 120, pos.device)
    with torch.no_grad():
        fused = model.point_features(pos, layout)
        context = model.global_features(fused.amax(0, keepdim=True), fused.mean(0, True), category)
        staged = model.head(fused, context, layout.batch)
        assert torch.allclose(staged, model(None, pos, category=category), atol=1e-6)


def test_check_category_is_public_and_names_what_is_wrong():
    model = create_model("pct_seg_tiny", num_categories=3)
    assert model.check_category(torch.tensor([[2]], dtype=torch.int32)).dtype == torch.long
    assert model.check_category(torch.tensor([0, 1]), num_clouds=2).tolist() == [0, 1]
    with pytest.raises(InputError, match="one entry per cloud"):
        model.check_category(torch.tensor([0, 1]))
    with pytest.raises(InputError, match="integer"):
        model.check_category(torch.tensor([1.0]))
    with pytest.raises(InputError, match=r"\[0, 3\)"):
        model.check_category(torch.tensor([3]))
    with pytest.raises(InputError, match="tensor"):
        model.check_category(1)


def test_is_streamable_needs_every_layer_external():
    assert is_streamable(create_model("pct_seg_tiny"))
    assert is_streamable(create_model("pct_semseg_tiny"))
    assert not is_streamable(create_model("pct_seg_tiny", attention="self"))
    assert not is_streamable(create_model("pct_semseg_tiny", attention="self"))
    assert not is_streamable(create_model("pct_cls_tiny"))  # classify_large covers it
    mixed = create_model("pct_seg_tiny")
    mixed.attention[1] = OffsetAttention(mixed.attention[1].channels, attention="self")
    assert not is_streamable(mixed)
    with pytest.raises(InputError, match="external attention"):
        segment_large(mixed.eval(), torch.rand(50, 3), 0)


def test_streaming_reads_no_private_name_of_another_object():
    tree = ast.parse(inspect.getsource(streaming))
    private = sorted(
        {
            f"{ast.unparse(node.value)}.{node.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id == "self")
        }
    )
    assert private == []


def test_streaming_follows_the_stages_activation():
    """The fusion's activation comes from the layer, not from streaming's own copy."""
    model = nontrivial_segmenter(seed=1)
    model.fuse = LBR(model.fuse.linear.in_features, model.fuse.out_channels, negative_slope=0.7)
    _nontrivial(model.fuse, seed=2)
    pos = torch.rand(400, 3)
    with torch.no_grad():
        expect = model(None, pos, category=torch.tensor([1]))
    got = segment_large(model, pos, 1, chunk_size=128)
    assert torch.allclose(got, expect, atol=1e-5, rtol=1e-5)
