"""Exact restructurings with hand-written backward passes equal the plain formulas.

Every memory or speed optimisation that reorders the algebra or replaces autograd's
backward is compared here, outputs AND gradients (float64, tight tolerances), against
the straightforward implementation of the same maths, on equal-size and mixed-size
batches (the dense fast paths and the packed paths).
"""

import copy

import pytest
import torch
from pointea_testing import make_batch, naive_external

from pointea.models import PCTSegmenter
from pointea.nn import ExternalAttention, NeighborEmbedding, OffsetAttention
from pointea.nn.fused import batchnorm_relu_max, sign_of_weight
from pointea.ops import check_cloud, max_mean_pool

SIZES = [[12, 12, 12], [5, 19, 9]]
EA_VARIANTS = [
    dict(),
    dict(heads=4),  # folded key and value maps (cheaper than projecting)
    dict(heads=8, memory_units=64),  # not folded: projecting is cheaper
    dict(tie_memories=True),
    dict(in_proj=False),
]


def _grads(module, inputs, out):
    weight = torch.randn_like(out)
    params = [p for p in module.parameters() if p.requires_grad]
    return torch.autograd.grad((out * weight).sum(), [*inputs, *params])


def _assert_all_close(got, expect, atol=1e-10):
    assert len(got) == len(expect)
    for i, (a, b) in enumerate(zip(got, expect, strict=True)):
        assert torch.allclose(a, b, atol=atol, rtol=1e-8), f"tensor {i}: {(a - b).abs().max()}"


def _assert_same_state_and_gradients(module, plain, inputs, got, expect, atol=1e-10):
    """Equal buffers (BatchNorm statistics) and equal gradients of inputs and parameters."""
    for name, buf in module.named_buffers():
        assert torch.allclose(buf.double(), dict(plain.named_buffers())[name].double()), name
    torch.manual_seed(1)
    got_grads = _grads(module, inputs, got)
    torch.manual_seed(1)
    _assert_all_close(got_grads, _grads(plain, inputs, expect), atol=atol)


def _naive_packed_external(layer, x, batch):
    return torch.cat([naive_external(layer, x[batch == b]) for b in range(int(batch[-1]) + 1)])


@pytest.mark.parametrize("kwargs", EA_VARIANTS)
@pytest.mark.parametrize("sizes", SIZES)
def test_external_attention_gradients_equal_plain_autograd(kwargs, sizes):
    _, batch, x = make_batch(sizes, channels=16)
    x = x.double().requires_grad_()
    layer = ExternalAttention(16, **{"memory_units": 8, **kwargs}).double()
    if kwargs.get("memory_units") == 64:
        assert not layer._fold_key and not layer._fold_value
    elif kwargs.get("heads"):
        assert layer._fold_key and layer._fold_value
    layout = check_cloud(torch.zeros(x.size(0), 3), batch)
    out = layer(x, layout=layout)
    expect = _naive_packed_external(layer, x, batch)
    assert torch.allclose(out, expect, atol=1e-10)
    torch.manual_seed(1)
    got = _grads(layer, [x], out)
    torch.manual_seed(1)
    _assert_all_close(got, _grads(layer, [x], expect))


@pytest.mark.parametrize("kwargs", EA_VARIANTS[:2])
@pytest.mark.parametrize("sizes", SIZES)
def test_offset_attention_folded_transform_equals_plain_formula(kwargs, sizes):
    _, batch, x = make_batch(sizes, channels=16)
    x = x.double().requires_grad_()
    layer = OffsetAttention(16, "external", memory_units=8, **kwargs).double().train()
    plain = copy.deepcopy(layer)
    layout = check_cloud(torch.zeros(x.size(0), 3), batch)
    out = layer(x, layout=layout)
    # F_out = LBR(F_in - EA(F_in)) + F_in, written out
    expect = x + plain.transform(x - _naive_packed_external(plain.attention, x, batch))
    assert torch.allclose(out, expect, atol=1e-10)
    for name, buf in layer.named_buffers():  # batch-norm statistics updated identically
        assert torch.allclose(buf, dict(plain.named_buffers())[name], atol=1e-12), name
    torch.manual_seed(1)
    got = _grads(layer, [x], out)
    torch.manual_seed(1)
    _assert_all_close(got, _grads(plain, [x], expect))


def test_external_attention_under_bfloat16_autocast_matches_float32():
    _, batch, x = make_batch([40, 40], channels=16)
    layer = OffsetAttention(16, "external", memory_units=8)
    expect = layer(x, batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = layer(x.requires_grad_(), batch)
    got.float().sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.float32
    assert torch.allclose(got.float(), expect, atol=0.1, rtol=0.05)


@pytest.mark.parametrize("sizes", SIZES)
def test_max_mean_pool_gradient_equals_plain_pools(sizes):
    _, batch, x = make_batch(sizes, channels=7)
    x = x.double().requires_grad_()
    layout = check_cloud(torch.zeros(x.size(0), 3), batch)
    top, mean = max_mean_pool(x, layout)
    per_cloud = [x[batch == b] for b in range(len(sizes))]
    expect_top = torch.stack([c.max(dim=0).values for c in per_cloud])
    expect_mean = torch.stack([c.mean(dim=0) for c in per_cloud])
    assert torch.equal(top, expect_top) and torch.allclose(mean, expect_mean, atol=1e-12)
    w1, w2 = torch.randn_like(top), torch.randn_like(mean)
    (got,) = torch.autograd.grad((top * w1).sum() + (mean * w2).sum(), x)
    (expect,) = torch.autograd.grad(
        (expect_top * w1).sum() + (expect_mean * w2).sum(), x, retain_graph=True
    )
    assert torch.allclose(got, expect, atol=1e-12)
    # one pool alone (the other's gradient is None)
    (only_max,) = torch.autograd.grad(max_mean_pool(x, layout)[0].sum(), x)
    assert torch.allclose(only_max, torch.autograd.grad(expect_top.sum(), x)[0])


def test_segmenter_head_dropout_is_relu_then_dropout_with_the_same_mask():
    _, batch = make_batch([30, 30])
    model = (
        PCTSegmenter(
            num_parts=5,
            num_categories=3,
            embed_channels=16,
            num_attention_layers=2,
            fuse_channels=32,
            category_channels=8,
            head_channels=(24, 16),
            dropout=0.4,
        )
        .double()
        .train()
    )
    fused = torch.randn(60, 32, dtype=torch.float64)
    context = torch.randn(2, 2 * 32 + 8, dtype=torch.float64)
    plain = copy.deepcopy(model)
    torch.manual_seed(3)
    got = model.head(fused, context, batch)
    torch.manual_seed(3)
    h = plain.head1.linear(torch.cat([fused, context[batch]], dim=-1))
    drop = torch.empty_like(h, dtype=torch.bool).bernoulli_(0.4)
    h = torch.relu(plain.head1.norm(h)).masked_fill(drop, 0) / 0.6  # ReLU, then dropout
    expect = plain.classifier(plain.head2(h))
    assert torch.allclose(got, expect, atol=1e-10)
    assert 0.25 < drop.double().mean() < 0.55
    model.eval()  # no dropout at inference
    assert torch.allclose(model.head(fused, context, batch), model.head(fused, context, batch))


def _plain_bn_relu_max(y, k, norm):
    return torch.relu(norm(y)).view(-1, k, y.size(1)).max(dim=1).values


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_relu_max_equals_the_plain_sequence(training, momentum):
    k, channels = 6, 5
    y = (torch.randn(7 * k, channels, dtype=torch.float64) * 3 + 1).requires_grad_()
    norm = torch.nn.BatchNorm1d(channels, momentum=momentum).double()
    with torch.no_grad():  # negative, zero and positive scales; non-trivial running stats
        norm.weight.copy_(torch.tensor([1.5, -0.7, 0.0, 2.0, -1.2]))
        norm.bias.copy_(torch.tensor([0.1, 0.3, -0.2, -1.0, 0.5]))
        norm.running_mean.copy_(torch.randn(channels))
        norm.running_var.copy_(torch.rand(channels) + 0.5)
    norm.train(training)
    plain = copy.deepcopy(norm)
    sign = sign_of_weight(norm)
    # the caller flips the channels of y whose weight is negative (in the matrix product)
    got = batchnorm_relu_max(y * sign, k, norm)
    expect = _plain_bn_relu_max(y, k, plain)
    assert torch.allclose(got, expect, atol=1e-12)
    _assert_same_state_and_gradients(norm, plain, [y], got, expect)


def test_batchnorm_relu_max_at_a_zero_weight_takes_the_right_derivative():
    """A zero weight ties every normalised value of its channel: the output is the plain
    one, no gradient reaches y there, and the weight's gradient is the derivative from
    the right (the maxima taken on y), checked by a one-sided finite difference."""
    k, channels = 4, 3
    y = (torch.randn(5 * k, channels, dtype=torch.float64) * 2).requires_grad_()
    norm = torch.nn.BatchNorm1d(channels).double()
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([0.0, 1.0, -0.5]))
        norm.bias.fill_(0.5)  # relu(bias) > 0: the tied channel passes its gradient on
    plain = copy.deepcopy(norm)
    got = batchnorm_relu_max(y * sign_of_weight(norm), k, norm)
    assert torch.allclose(got, _plain_bn_relu_max(y, k, plain), atol=1e-12)
    weight = torch.randn_like(got)
    grad_y, grad_w = torch.autograd.grad((got * weight).sum(), [y, norm.weight])
    assert torch.all(grad_y[:, 0] == 0)
    step = 1e-7
    with torch.no_grad():
        plain.weight[0] = step
        right = (_plain_bn_relu_max(y, k, plain.train()) * weight).sum()
        plain.weight[0] = 0.0
        at_zero = (_plain_bn_relu_max(y, k, plain) * weight).sum()
    assert abs(float(grad_w[0]) - float(right - at_zero) / step) < 1e-5


def test_batchnorm_relu_max_rejects_one_row_in_training():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        batchnorm_relu_max(torch.randn(1, 3), 1, torch.nn.BatchNorm1d(3))


@pytest.mark.parametrize("sizes", SIZES)
def test_neighbor_embedding_fused_path_equals_plain_layers(sizes):
    pos, batch, x = make_batch([64, 64] if sizes[0] == 12 else [64, 40, 20], channels=6)
    stage = NeighborEmbedding(6, 10, num_samples=16, k=8).double().train()
    with torch.no_grad():
        stage.norm2.weight.copy_(torch.linspace(-1, 1, 10))
    plain = copy.deepcopy(stage)
    # a subclass of BatchNorm1d (e.g. synchronised batch norm) takes the plain layers
    plain.norm2.__class__ = type("PlainNorm", (torch.nn.BatchNorm1d,), {})
    x = x.double().requires_grad_()
    pos = pos.double()
    got, got_pos, _ = stage(x, pos, batch)
    expect, expect_pos, _ = plain(x, pos, batch)
    assert torch.equal(got_pos, expect_pos)
    assert torch.allclose(got, expect, atol=1e-10)
    _assert_same_state_and_gradients(stage, plain, [x], got, expect, atol=1e-9)


def test_fused_layers_under_bfloat16_autocast_track_float32():
    pos, batch, x = make_batch([128, 128], channels=6)
    stage = NeighborEmbedding(6, 16, num_samples=32, k=8).train()
    ref = copy.deepcopy(stage)
    expect, _, _ = ref(x, pos, batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, _, _ = stage(x.requires_grad_(), pos, batch)
    got.float().sum().backward()
    assert got.dtype == torch.bfloat16 and x.grad.dtype == torch.float32
    assert torch.isfinite(x.grad).all()
    assert torch.allclose(got.float(), expect, atol=0.1, rtol=0.05)
    assert torch.allclose(stage.norm2.running_mean, ref.norm2.running_mean, atol=0.02, rtol=0.05)


def test_batchnorm_relu_max_in_bfloat16_tracks_float32():
    k, channels = 8, 6
    y32 = (torch.randn(40 * k, channels) * 2 + 0.5).bfloat16().float().requires_grad_()
    y16 = y32.detach().bfloat16().requires_grad_()
    norm = torch.nn.BatchNorm1d(channels)
    plain = copy.deepcopy(norm)
    got = batchnorm_relu_max(y16, k, norm)
    expect = _plain_bn_relu_max(y32, k, plain)
    assert got.dtype == torch.bfloat16
    assert torch.allclose(got.float(), expect, atol=0.03, rtol=0.02)
    weight = torch.randn_like(expect)
    (grad16,) = torch.autograd.grad((got.float() * weight).sum(), y16)
    (grad32,) = torch.autograd.grad((expect * weight).sum(), y32)
    assert grad16.dtype == torch.bfloat16
    assert torch.allclose(grad16.float(), grad32, atol=0.01, rtol=0.03)


def test_max_mean_pool_without_autograd_equals_with():
    _, batch, x = make_batch([9, 9, 9], channels=4)
    layout = check_cloud(torch.zeros(x.size(0), 3), batch)
    with_grad = max_mean_pool(x.requires_grad_(), layout)
    with torch.no_grad():
        without = max_mean_pool(x, layout)
    assert all(torch.equal(a.detach(), b) for a, b in zip(with_grad, without, strict=True))


def test_segmenter_head_broadcasts_one_cloud_context_like_the_gather():
    model = PCTSegmenter(
        num_parts=5, num_categories=3, embed_channels=16, num_attention_layers=2,
        fuse_channels=32, category_channels=8, head_channels=(24, 16),
    ).eval()  # fmt: skip
    fused, context = torch.randn(20, 32), torch.randn(1, 2 * 32 + 8)
    zeros = torch.zeros(20, dtype=torch.long)
    got = model.head(fused, context, zeros)
    two = model.head(
        torch.cat([fused, fused]), torch.cat([context, context]), torch.cat([zeros, zeros + 1])
    )
    assert torch.allclose(got, two[:20], atol=1e-6) and torch.allclose(got, two[20:], atol=1e-6)


def test_segmenter_inference_in_head_slices_equals_one_pass(monkeypatch):
    import pointea.models.segmenter as segmenter_module

    pos, batch = make_batch([30, 25])
    model = PCTSegmenter(
        num_parts=5, num_categories=3, embed_channels=16, num_attention_layers=2,
        fuse_channels=32, category_channels=8, head_channels=(24, 16),
    ).eval()  # fmt: skip
    category = torch.tensor([0, 2])
    with torch.no_grad():
        whole = model(None, pos, batch, category=category)
        monkeypatch.setattr(segmenter_module, "_HEAD_CHUNK", 7)
        sliced = model(None, pos, batch, category=category)
    assert torch.allclose(sliced, whole, atol=1e-6)
    monkeypatch.setattr(segmenter_module, "_HEAD_CHUNK", 1)  # every point its own slice
    with torch.no_grad():
        assert torch.allclose(model(None, pos[:30], category=category[:1]), whole[:30], atol=1e-5)
