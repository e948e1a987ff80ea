"""Models: shapes, gradients, batch independence, permutation, registry, bad input."""

import pytest
import torch
from pointea_testing import make_batch

from pointea.errors import InputError
from pointea.models import PCTClassifier, create_model, list_models, model_kind

TINY_CLS = dict(num_classes=5, num_samples=(16, 8), k=8)
TINY_SEG = dict(num_parts=7, num_categories=3)


def cls_model(attention="external", **kw):
    return create_model("pct_cls_tiny", attention=attention, **{**TINY_CLS, **kw})


def seg_model(attention="external", **kw):
    return create_model("pct_seg_tiny", attention=attention, **{**TINY_SEG, **kw})


def run(model, pos, batch, category=None, x=None):
    if model.kind == "segmentation":
        return model(x, pos, batch, category=category)
    return model(x, pos, batch)


# scene models (kind "semseg", inputs pos + features) have their own test in test_semseg.py
@pytest.mark.parametrize("name", [n for n in list_models() if model_kind(n) != "semseg"])
def test_every_registered_model_forward_backward(name):
    kind = model_kind(name)
    if name.endswith("tiny"):
        model = create_model(name, **(TINY_CLS if kind == "classification" else TINY_SEG))
    else:  # published widths, small clouds
        kw = dict(num_samples=(32, 16), k=8) if kind == "classification" else {}
        model = create_model(name, **kw)
    pos, batch = make_batch([40, 40])
    category = torch.tensor([0, 1])
    out = run(model.train(), pos, batch, category)
    rows = 2 if kind == "classification" else 80
    assert out.shape[0] == rows and torch.isfinite(out).all()
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing, f"no gradient for {missing}"


@pytest.mark.parametrize("attention", ["external", "self"])
@pytest.mark.parametrize("kind", ["classification", "segmentation"])
@pytest.mark.parametrize("sizes", [[48, 48, 48], [48, 20, 33]])
def test_batch_independence(attention, kind, sizes):
    model = (cls_model if kind == "classification" else seg_model)(attention).eval()
    pos, batch = make_batch(sizes)
    category = torch.tensor([2, 0, 1])
    with torch.no_grad():
        together = run(model, pos, batch, category)
        for b in range(len(sizes)):
            sel = batch == b
            alone = run(model, pos[sel], None, category[b : b + 1])
            part = together[b : b + 1] if kind == "classification" else together[sel]
            assert torch.allclose(alone, part, atol=1e-5), f"cloud {b} depends on its batch"


@pytest.mark.parametrize("attention", ["external", "self"])
def test_classifier_permutation_invariant(attention):
    model = cls_model(attention).eval()
    pos, _ = make_batch([64])
    perm = torch.cat([torch.tensor([0]), torch.randperm(63) + 1])  # keep the FPS start
    with torch.no_grad():
        assert torch.allclose(model(None, pos), model(None, pos[perm]), atol=1e-5)


@pytest.mark.parametrize("attention", ["external", "self"])
def test_segmenter_permutation_equivariant(attention):
    model = seg_model(attention).eval()
    pos, _ = make_batch([64])
    perm = torch.randperm(64)
    category = torch.tensor([1])
    with torch.no_grad():
        assert torch.allclose(
            model(None, pos, category=category)[perm],
            model(None, pos[perm], category=category),
            atol=1e-5,
        )


def test_published_parameter_counts():
    self_attn = create_model("pct_cls", attention="self")
    external = create_model("pct_cls", attention="external")
    n_self = sum(p.numel() for p in self_attn.parameters())
    n_ext = sum(p.numel() for p in external.parameters())
    assert n_self == 2_876_136  # the public PCT reimplementation's count
    # EA layer: input projection d*d + d and two d*S memories, instead of PCT's d*d/4 + d*d + d
    assert n_ext == n_self + 4 * (64 * 256 * 2 - 256 * 64)


def test_registry_rebuilds_from_hparams():
    model = cls_model("self")
    again = create_model(model.name, **model.hparams)
    again.load_state_dict(model.state_dict())
    assert again.hparams == model.hparams
    assert isinstance(again, PCTClassifier)
    with pytest.raises(InputError, match="unknown name"):
        create_model("pct_nope")


def test_normals_as_input_features():
    model = cls_model(in_channels=6).eval()
    pos, batch, normals = make_batch([30, 30], channels=3)
    assert model(normals, pos, batch).shape == (2, 5)
    with pytest.raises(InputError, match="normals"):
        model(None, pos, batch)
    with pytest.raises(InputError, match="3 channels"):
        model(torch.zeros(60, 4), pos, batch)


def test_models_reject_bad_input():
    model = cls_model().eval()
    pos, batch = make_batch([20, 20])
    bad = pos.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(InputError, match="non-finite"):
        model(None, bad, batch)
    with pytest.raises(InputError, match="sorted"):
        model(None, pos, batch.flip(0))
    with pytest.raises(InputError, match="empty"):
        model(None, torch.zeros(0, 3))
    seg = seg_model().eval()
    with pytest.raises(InputError, match="category"):
        seg(None, pos, batch, category=torch.tensor([0, 9]))
    with pytest.raises(InputError, match="one entry per cloud"):
        seg(None, pos, batch, category=torch.tensor([0]))


def test_a_call_in_the_old_argument_order_fails_clearly():
    """Every model takes PyG's (x, pos, batch); the order before it, (pos, batch, ...),
    is refused with a message that names the order, never run on swapped inputs."""
    from pointea.models import create_model

    pos, batch, normals = make_batch([20, 20], channels=3)
    cls = cls_model().eval()
    for call in (lambda: cls(pos, batch), lambda: cls(pos), lambda: cls(pos, batch=batch)):
        with pytest.raises(InputError, match=r"\(x, pos, batch\)"):
            call()
    seg = seg_model().eval()
    with pytest.raises(TypeError, match="category"):
        seg(pos, torch.tensor([0, 1]), batch)  # category is keyword-only
    with pytest.raises(InputError, match=r"\(x, pos, batch\)"):
        seg(pos, batch, category=torch.tensor([0, 1]))
    scene = create_model("pct_semseg_tiny").eval()
    x = torch.rand(40, 6)
    with pytest.raises(InputError, match="expected shape"):
        scene(pos, x, batch)  # (pos, x): x lands in pos and has 6 columns
    with torch.no_grad():
        assert scene(x, pos, batch).shape == (40, 13)
        assert torch.equal(cls(None, pos, batch), cls(pos=pos, batch=batch))


def test_tiny_clouds_smaller_than_k_and_samples():
    model = cls_model().eval()
    pos, batch = make_batch([5, 3])  # fewer points than k=8 and num_samples=16
    with torch.no_grad():
        out = model(None, pos, batch)
    assert out.shape == (2, 5) and torch.isfinite(out).all()
