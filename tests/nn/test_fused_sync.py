"""The fused BatchNorm + ReLU + max with synchronised batch norms, and its deterministic mode.

Two gloo processes on CPU, each with half of the neighbour groups, must give what one
process gives on all of them with a plain BatchNorm1d: outputs, input gradients, running
statistics, and parameter gradients that sum to the single process's.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pointea.engine import DistributedBatchNorm
from pointea.nn import NeighborEmbedding
from pointea.nn.fused import batchnorm_relu_max, fusable_norm, sign_of_weight

K, C, GROUPS = 4, 5, 12


def _data():
    g = torch.Generator().manual_seed(3)
    y = torch.randn(GROUPS * K, C, generator=g, dtype=torch.float64) * 2 + 0.5
    weight = torch.randn(GROUPS, C, generator=g, dtype=torch.float64)
    return y, weight


def _norm(kind: str):
    norm = torch.nn.SyncBatchNorm(C) if kind == "sync" else DistributedBatchNorm(C)
    norm = norm.double()
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1.5, -0.7, 0.0, 2.0, -1.2]))
        norm.bias.copy_(torch.tensor([0.1, 0.3, -0.2, -1.0, 0.5]))
    return norm.train()


def _fused(norm, y, weight):
    y = y.clone().requires_grad_()
    sign = sign_of_weight(norm)
    out = batchnorm_relu_max(y * sign, K, norm, sign)
    (out * weight).sum().backward()
    return out.detach(), y.grad, norm.weight.grad, norm.bias.grad


def _worker(rank, world, init, kind, result_path):
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        y, weight = _data()
        rows = y.size(0) // world
        mine = slice(rank * rows, (rank + 1) * rows)
        groups = slice(rank * rows // K, (rank + 1) * rows // K)
        norm = _norm(kind)
        out, grad_y, grad_w, grad_b = _fused(norm, y[mine], weight[groups])
        torch.save(
            {
                "out": out,
                "grad_y": grad_y,
                "grad_w": grad_w,
                "grad_b": grad_b,
                "running_mean": norm.running_mean,
                "running_var": norm.running_var,
            },
            f"{result_path}.{rank}",
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sync", "distributed"])
def test_two_processes_equal_one_process_plain_batchnorm(tmp_path, kind):
    world = 2
    init = f"file://{tmp_path / 'rendezvous'}"
    mp.spawn(_worker, args=(world, init, kind, str(tmp_path / "res")), nprocs=world)
    parts = [torch.load(f"{tmp_path / 'res'}.{r}", weights_only=True) for r in range(world)]

    y, weight = _data()
    plain = torch.nn.BatchNorm1d(C).double().train()
    plain.load_state_dict(_norm("sync").state_dict(), strict=False)
    y = y.clone().requires_grad_()
    expect = torch.relu(plain(y)).view(-1, K, C).amax(dim=1)
    (expect * weight).sum().backward()

    assert torch.allclose(torch.cat([p["out"] for p in parts]), expect, atol=1e-12)
    assert torch.allclose(torch.cat([p["grad_y"] for p in parts]), y.grad, atol=1e-12)
    assert torch.allclose(sum(p["grad_w"] for p in parts), plain.weight.grad, atol=1e-12)
    assert torch.allclose(sum(p["grad_b"] for p in parts), plain.bias.grad, atol=1e-12)
    for p in parts:
        assert torch.allclose(p["running_mean"], plain.running_mean, atol=1e-12)
        assert torch.allclose(p["running_var"], plain.running_var, atol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_sync_batchnorm_without_a_group_is_the_local_fused_path(training):
    # eval mode, or no process group initialised: the batch (or running) statistics are
    # the local ones, so the fused path must equal the plain layers on this process
    y, weight = _data()
    norm = _norm("sync").train(training)
    plain = torch.nn.BatchNorm1d(C).double().train(training)
    plain.load_state_dict(norm.state_dict())
    assert fusable_norm(norm) and fusable_norm(plain)
    out, grad_y, grad_w, grad_b = _fused(norm, y, weight)
    y = y.clone().requires_grad_()
    expect = torch.relu(plain(y)).view(-1, K, C).amax(dim=1)
    (expect * weight).sum().backward()
    assert torch.allclose(out, expect, atol=1e-12)
    assert torch.allclose(grad_y, y.grad, atol=1e-12)
    assert torch.allclose(grad_w, plain.weight.grad, atol=1e-12)
    assert torch.allclose(norm.running_mean, plain.running_mean, atol=1e-12)


def test_converted_neighbor_embedding_keeps_the_fused_path(monkeypatch):
    stage = NeighborEmbedding(6, 8, num_samples=8, k=4).train()
    converted = copy.deepcopy(stage)
    converted.norm2 = torch.nn.SyncBatchNorm.convert_sync_batchnorm(converted.norm2)
    calls = []
    import pointea.nn.embedding as embedding

    real = embedding.batchnorm_relu_max
    monkeypatch.setattr(embedding, "batchnorm_relu_max", lambda *a: calls.append(1) or real(*a))
    g = torch.Generator().manual_seed(0)
    pos, x = torch.rand(32, 3, generator=g), torch.randn(32, 6, generator=g)
    batch = torch.zeros(32, dtype=torch.long)
    got, _, _ = converted(x, pos, batch)
    expect, _, _ = stage(x, pos, batch)
    assert calls == [1, 1]
    assert torch.allclose(got, expect, atol=1e-6)
    assert not fusable_norm(type("Other", (torch.nn.BatchNorm1d,), {})(4))


def test_deterministic_mode_gives_the_same_half_precision_gradient():
    g = torch.Generator().manual_seed(1)
    y = (torch.randn(30 * K, C, generator=g) * 2).bfloat16()
    weight = torch.randn(30, C, generator=g)
    norm = torch.nn.BatchNorm1d(C)
    results = []
    for deterministic in (False, True):
        before = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(deterministic)
        try:
            leaf = y.clone().requires_grad_()
            out = batchnorm_relu_max(leaf, K, copy.deepcopy(norm))
            (out.float() * weight).sum().backward()
            results.append(leaf.grad)
        finally:
            torch.use_deterministic_algorithms(before)
    assert results[0].dtype == torch.bfloat16
    assert torch.equal(results[0], results[1])
    assert results[0].abs().sum() > 0
