"""pointea.inference: the Predictor, its preprocessing, streaming, and all-points scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from pointea import io
from pointea.datasets.shapenetpart import CATEGORY_PARTS, SHAPENET_CATEGORIES
from pointea.errors import CheckpointError
from pointea.inference import Predictor, evaluate_all_points
from pointea.models import create_model, save_pretrained
from pointea.transforms import NormalizeUnitSphere, SubsamplePoints

MUG = list(SHAPENET_CATEGORIES).index("Mug")


@pytest.fixture(scope="module")
def cls_folder(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("pct_cls_tiny", num_classes=3).eval()
    return save_pretrained(model, tmp_path_factory.mktemp("c") / "m",
                           class_names=["a", "b", "c"], num_points=64)


def test_numpy_and_torch_normalisation_are_the_same():
    """Prediction normalises with numpy (pointea.io), training with a torch transform."""
    rng = np.random.default_rng(0)
    for pts in (rng.normal(size=(500, 3)) * 7 + 3, rng.uniform(-1e3, 1e3, size=(40, 3)),
                np.ones((5, 3))):
        a, _, _ = io.normalize_unit_sphere(pts)
        b = NormalizeUnitSphere()(Data(pos=torch.from_numpy(pts))).pos.numpy()
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_numpy_and_torch_resampling_follow_the_same_rules():
    """Both draw without repetition when there are enough points, and keep every point
    once and repeat others when there are too few."""
    torch.manual_seed(0)
    for n, k in ((100, 40), (30, 64)):
        idx = io.resample_indices(n, k, seed=1)
        data = SubsamplePoints(k, method="random")(Data(pos=torch.arange(n * 3.0).view(n, 3)))
        tidx = (data.pos[:, 0] / 3).long().numpy()
        for sel in (idx, tidx):
            assert len(sel) == k and sel.min() >= 0 and sel.max() < n
            if n >= k:
                assert len(np.unique(sel)) == k
            else:
                assert set(range(n)) <= set(sel.tolist())


def test_from_pretrained_reads_num_points_and_names(cls_folder):
    p = Predictor.from_pretrained(cls_folder, device="cpu")
    assert p.num_points == 64 and p.kind == "classification" and list(p.class_names) == list("abc")
    pts = np.random.default_rng(0).normal(size=(300, 3))
    a = p.classify(pts)
    b = p.classify(torch.from_numpy(pts))
    np.testing.assert_allclose(a.probabilities, b.probabilities)
    assert a.probabilities.shape == (3,) and abs(a.probabilities.sum() - 1) < 1e-5
    assert a.top_k(2)[0]["class"] == a.name


def test_missing_num_points_is_an_error_not_a_guess(tmp_path):
    model = create_model("pct_cls_tiny", num_classes=2).eval()
    folder = save_pretrained(model, tmp_path / "m", class_names=["a", "b"])
    with pytest.raises(CheckpointError, match="num_points"):
        Predictor.from_pretrained(folder, device="cpu")
    assert Predictor.from_pretrained(folder, device="cpu", num_points=32).num_points == 32


def test_streaming_equals_the_whole_cloud(monkeypatch):
    import pointea.models.streaming as streaming

    calls = []
    real = streaming.segment_large
    monkeypatch.setattr(streaming, "segment_large",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    torch.manual_seed(0)
    model = create_model("pct_seg_tiny").eval()
    pts = np.random.default_rng(0).normal(size=(700, 3))
    whole = Predictor(model, num_points=None, chunk_size=10_000)
    chunked = Predictor(model, num_points=None, chunk_size=128)
    pos, _, _ = whole.prepare(pts, all_points=True)
    a = whole.logits(pos, None, MUG)
    b = chunked.logits(pos, None, MUG)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert calls == [1]  # the chunked path really ran
    seg = chunked.segment(pts, "Mug", all_points=True)
    assert seg.labels.shape == (700,) and np.isin(seg.labels, CATEGORY_PARTS[MUG]).all()


def test_segment_labels_every_input_point_through_the_sample():
    torch.manual_seed(0)
    p = Predictor(create_model("pct_seg_tiny").eval(), num_points=50)
    pts = np.random.default_rng(1).normal(size=(333, 3))
    seg = p.segment(pts, MUG)
    assert seg.labels.shape == (333,) and len(seg.sampled) == 50
    # the points the model saw keep their own prediction
    np.testing.assert_array_equal(seg.labels[seg.sampled],
                                  p.segment(pts, MUG).labels[seg.sampled])


def test_all_points_scoring_counts_every_point_of_every_shape(tmp_path):
    from pointea.datasets import ShapeNetPart, ensure_synthetic

    root = ensure_synthetic("shapenetpart", root=tmp_path / "d", categories=["Mug", "Lamp"],
                            train_per_category=1, val_per_category=1, test_per_category=2,
                            points=150)
    from torch_geometric.transforms import Compose

    ds = ShapeNetPart(root, "test", transform=Compose([NormalizeUnitSphere(),
                                                        SubsamplePoints(32, "random")]))
    full = sum(ds.get(i).pos.size(0) for i in range(len(ds)))
    assert ds[0].pos.size(0) == 32 and full > 32 * len(ds)
    torch.manual_seed(0)
    predictor = Predictor(create_model("pct_seg_tiny").eval(), num_points=None, chunk_size=64)
    res = evaluate_all_points(predictor, ds)
    assert res["points"] == "all" and res["points_scored"] == full
    assert res["num_shapes"] == len(ds) and 0 <= res["instance_miou"] <= 1


def test_dataset_samples_as_their_transforms_prepared_them(cls_folder):
    p = Predictor.from_pretrained(cls_folder, device="cpu")
    g = torch.Generator().manual_seed(0)
    ds = [Data(pos=torch.rand(64, 3, generator=g) * 2 - 1, y=torch.tensor([1]))
          for _ in range(3)]
    results = list(p.predict_dataset(ds))
    assert len(results) == 3
    with torch.no_grad():
        direct = torch.softmax(p.model(None, ds[2].pos), dim=-1).reshape(-1).numpy()
    np.testing.assert_allclose(results[2].probabilities, direct, rtol=1e-5, atol=1e-6)
    seg = Predictor(create_model("pct_seg_tiny").eval(), num_points=None)
    sample = Data(pos=torch.rand(80, 3, generator=g), category=torch.tensor([MUG]))
    out = seg.predict_sample(sample)
    assert out.labels.shape == (80,) and np.isin(out.labels, CATEGORY_PARTS[MUG]).all()
