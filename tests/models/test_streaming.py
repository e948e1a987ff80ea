"""Chunked (streaming) inference equals the ordinary forward pass."""

import pytest
import torch
from pointea_testing import nontrivial_segmenter

from pointea.errors import InputError
from pointea.models import create_model
from pointea.models.streaming import classify_large, segment_large


@pytest.mark.parametrize("chunk_size", [97, 512, 5000])
@pytest.mark.parametrize("heads", [1, 2])
def test_segment_large_equals_forward(chunk_size, heads):
    model = create_model("pct_seg_tiny", num_parts=9, num_categories=3, heads=heads).eval()
    # make BatchNorm non-trivial so the comparison means something
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    pos = torch.rand(3000, 3) * 2 - 1
    with torch.no_grad():
        expect = model(None, pos, category=torch.tensor([2]))
    got = segment_large(model, pos, 2, chunk_size=chunk_size)
    assert torch.allclose(got, expect, atol=1e-5, rtol=1e-5), (got - expect).abs().max()


def test_classify_large_equals_forward():
    model = create_model("pct_cls_tiny", num_classes=6).eval()
    pos = torch.rand(5000, 3)
    with torch.no_grad():
        expect = model(None, pos)
    assert torch.allclose(classify_large(model, pos), expect, atol=1e-5)


def test_streaming_refuses_self_attention_and_train_mode():
    model = create_model("pct_seg_tiny", attention="self").eval()
    with pytest.raises(InputError, match="4 TB"):
        segment_large(model, torch.rand(100, 3), 0)
    with pytest.raises(InputError, match="eval"):
        segment_large(create_model("pct_seg_tiny").train(), torch.rand(100, 3), 0)
    with pytest.raises(InputError, match="category"):
        segment_large(create_model("pct_seg_tiny").eval(), torch.rand(100, 3), 99)


@pytest.mark.parametrize("cache_bytes", [0, 700 * 4 * 32, 2**30])
def test_segment_large_head_cache_none_part_or_all(cache_bytes):
    # cache for no point, for 700 of 3000 (a boundary inside a chunk) and for all
    model = nontrivial_segmenter()
    pos = torch.rand(3000, 3) * 2 - 1
    with torch.no_grad():
        expect = model(None, pos, category=torch.tensor([1]))
    got = segment_large(model, pos, 1, chunk_size=512, cache_bytes=cache_bytes)
    assert got.dtype == torch.float32
    assert torch.allclose(got, expect, atol=1e-5, rtol=1e-5), (got - expect).abs().max()


def test_segment_large_under_bfloat16_autocast_tracks_float32():
    model = nontrivial_segmenter()
    pos = torch.rand(4000, 3) * 2 - 1
    expect = segment_large(model, pos, 0, chunk_size=1000)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = segment_large(model, pos, 0, chunk_size=1000)
    assert got.dtype == torch.float32  # logits in float32 under autocast too
    assert torch.isfinite(got).all()
    assert not torch.equal(got, expect)  # the products really ran in bfloat16
    scale = expect.abs().max()
    assert (got - expect).abs().max() < 0.1 * scale


def test_segment_large_float32_head_under_bfloat16():
    model = nontrivial_segmenter()
    pos = torch.rand(4000, 3) * 2 - 1
    expect = segment_large(model, pos, 0, chunk_size=1000)
    assert torch.equal(segment_large(model, pos, 0, chunk_size=1000, head_float32=True), expect)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = segment_large(model, pos, 0, chunk_size=1000)
        tail32 = segment_large(model, pos, 0, chunk_size=1000, head_float32=True)
    assert tail32.dtype == torch.float32 and not torch.equal(tail32, plain)
    # the last two layers no longer round to bfloat16: closer to float32 on average
    assert (tail32 - expect).abs().mean() < (plain - expect).abs().mean()
