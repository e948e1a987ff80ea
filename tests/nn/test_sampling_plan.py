"""FPS and kNN computed in the loader's workers: the same logits and gradients as
in-model sampling, batched correctly, and a training step that reads nothing back."""

from __future__ import annotations

import pytest
import torch
from pointea_testing import HostReads
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

from pointea.errors import InputError
from pointea.models import create_model
from pointea.nn.sampling_plan import (
    PrecomputeSampling,
    plan_of,
    sampling_transform,
    without_plan,
)
from pointea.ops import input_checks, sampling_backend

SMALL = dict(num_classes=5, num_samples=(32, 16), k=8)


def _clouds(sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        Data(pos=torch.rand(n, 3, generator=g), y=torch.tensor([i % 5]))
        for i, n in enumerate(sizes)
    ]


def _logits_and_grads(model, batch, **kw):
    model.zero_grad()
    torch.manual_seed(1)  # dropout
    out = model(None, batch.pos, batch.batch, **kw)
    out.square().sum().backward()
    return out.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("backend", ["cluster", "torch"])
@pytest.mark.parametrize("sizes", [[64, 64, 64], [64, 40, 90], [64, 20, 90]])
def test_planned_sampling_equals_in_model_sampling(backend, sizes):
    torch.manual_seed(0)
    model = create_model("pct_cls_tiny", **SMALL).train()
    with sampling_backend(backend):
        plan = sampling_transform(model)
        plain = Batch.from_data_list(_clouds(sizes))
        planned = Batch.from_data_list([plan(c) for c in _clouds(sizes)])
        a, ga = _logits_and_grads(model, plain)
        b, gb = _logits_and_grads(model, planned, sampling=plan_of(planned))
    assert torch.equal(a, b)
    assert all(torch.equal(x, y) for x, y in zip(ga, gb, strict=True))


def test_batching_offsets_each_stage_by_its_own_input():
    plan = PrecomputeSampling([(8, 4), (4, 3)])
    clouds = [plan(c) for c in _clouds([20, 30])]
    batch = Batch.from_data_list(clouds)
    (fps0, knn0), (fps1, knn1) = plan_of(batch)
    assert fps0.shape == (16,) and knn0.shape == (16, 4)
    assert torch.equal(fps0[8:], clouds[1].fps0 + 20)  # rows of the batch's points
    assert torch.equal(knn0[8:], clouds[1].knn0 + 20)
    assert torch.equal(fps1[4:], clouds[1].fps1 + 8)  # rows of the batch's stage-0 centres
    assert torch.equal(knn1[4:], clouds[1].knn1 + 8)
    assert int(knn0[:8].max()) < 20 and int(knn1[:4].max()) < 8


def test_workers_compute_the_plan():
    torch.manual_seed(0)
    model = create_model("pct_cls_tiny", **SMALL).eval()
    plan = sampling_transform(model)
    data = [plan(c) for c in _clouds([48] * 6)]
    loader = DataLoader(data, batch_size=3, num_workers=2)
    plain = DataLoader(_clouds([48] * 6), batch_size=3)
    with torch.no_grad():
        for b, p in zip(loader, plain, strict=True):
            assert plan_of(b) is not None
            assert torch.equal(
                model(None, b.pos, b.batch, sampling=plan_of(b)), model(None, p.pos, p.batch)
            )


def test_small_clouds_and_models_without_stages():
    with pytest.raises(InputError, match="stage 0 of a cloud of 5 points"):
        PrecomputeSampling([(8, 6)])(_clouds([5])[0])
    assert sampling_transform(create_model("pct_seg_tiny")) is None


def test_a_plan_of_the_wrong_shape_is_refused():
    model = create_model("pct_cls_tiny", **SMALL)
    batch = Batch.from_data_list([PrecomputeSampling([(32, 4), (16, 4)])(c) for c in _clouds([40])])
    with pytest.raises(InputError, match="neighbours"):
        model(None, batch.pos, batch.batch, sampling=plan_of(batch))
    with pytest.raises(InputError, match="2 stages"):
        model(None, batch.pos, batch.batch, sampling=plan_of(batch)[:1])


def test_views_drop_their_plan():
    plan = PrecomputeSampling([(8, 4)])
    batch = Batch.from_data_list([plan(c) for c in _clouds([20, 20])])
    assert plan_of(without_plan(batch.clone())) is None and plan_of(batch) is not None


def test_training_step_with_plan_and_host_layout_reads_nothing_back():
    """Forward and backward of the classifier, clouds of equal size: no host read with
    the plan and the points per cloud from the host (the loop's finiteness check is its
    one read per step); in-model sampling reads the layout."""
    torch.manual_seed(0)
    model = create_model("pct_cls_tiny", **SMALL).train()
    plan = sampling_transform(model)
    batch = Batch.from_data_list([plan(c) for c in _clouds([64, 64])])
    with input_checks(False), HostReads() as reads:
        out = model(None, batch.pos, batch.batch, sampling=plan_of(batch), points_per_cloud=64)
        out.sum().backward()
    assert reads.names == []
    with input_checks(False), HostReads() as reads:
        model(None, batch.pos, batch.batch).sum().backward()
    assert reads.names  # what the plan saves


def test_points_per_cloud_is_checked():
    model = create_model("pct_cls_tiny", **SMALL).eval()
    batch = Batch.from_data_list(_clouds([30, 34]))
    with pytest.raises(InputError, match="does not divide"):
        model(None, batch.pos, batch.batch, points_per_cloud=31)
    with pytest.raises(InputError, match="do not all have 32 points"):
        model(None, batch.pos, batch.batch, points_per_cloud=32)  # value checks on


@pytest.mark.e2e
def test_training_with_the_plan_in_workers_equals_training_without(tmp_path, monkeypatch):
    from pointea.cli.train import main
    from pointea.datasets import ensure_synthetic
    from pointea.engine import load_checkpoint
    from pointea.nn.embedding import NeighborEmbedding

    planned_calls = []
    original = NeighborEmbedding._planned

    def spy(self, *args, **kwargs):
        planned_calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(NeighborEmbedding, "_planned", spy)
    data = ensure_synthetic("modelnet40", root=tmp_path / "d", num_classes=3,
                            train_per_class=6, test_per_class=2, points=128)  # fmt: skip
    args = ["--data-root", str(data), "--model", "pct_cls_tiny", "--batch-size", "4",
            "--num-points", "64", "--epochs", "2", "--no-progress", "--workers", "1",
            "--seed", "5"]  # fmt: skip
    assert main([*args, "--no-precompute-sampling", "--output-dir", str(tmp_path / "a")]) == 0
    assert not planned_calls
    assert main([*args, "--output-dir", str(tmp_path / "b")]) == 0  # on by default
    assert planned_calls
    a = load_checkpoint(tmp_path / "a/checkpoints/last.pt")["model"]
    b = load_checkpoint(tmp_path / "b/checkpoints/last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
