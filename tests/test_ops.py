import os
import subprocess
import sys
import textwrap

import pytest
import torch
from pointea_testing import HostReads, make_batch

from pointea import pure_sampling
from pointea.errors import InputError
from pointea.ops import (
    CLUSTER_CUDA_FPS_MAX_DIST2,
    CloudLayout,
    check_cloud,
    cuda_fps_coordinates,
    farthest_point_sample,
    input_checks,
    input_checks_enabled,
    knn_groups,
    layout_of,
    sampling_backend,
    sampling_kernel,
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


# --- device-aware checks (POINTEA_TEST_DEVICE) ------------------------------------------


def _naive_knn(pos, batch, centres, centre_batch, k):
    """Per centre, the (distance, index) pairs of its min(k, n) nearest points."""
    out = []
    for c in range(centres.size(0)):
        same = (batch == centre_batch[c]).nonzero().flatten()
        d = ((pos[same] - centres[c]) ** 2).sum(-1)
        order = torch.sort(d, stable=True).indices[:k]
        out.append(same[order])
    return out


@pytest.mark.parametrize("backend", ["auto", "torch"])
@pytest.mark.parametrize("sizes", [[64, 64], [50, 7, 30]])
def test_sampling_on_device_matches_cpu_reference(device, backend, sizes):
    pos, batch = make_batch(sizes)
    with sampling_backend("cluster"):
        ref_idx, _ = farthest_point_sample(pos, check_cloud(pos, batch), 16)
    pos_d, batch_d = pos.to(device), batch.to(device)
    with sampling_backend(backend):
        layout = check_cloud(pos_d, batch_d)
        idx, clayout = farthest_point_sample(pos_d, layout, 16)
        # k above torch_cluster's CUDA limit of 100: the pure-torch kernel takes over there
        for k in (8, 120):
            ci, pi, _ = knn_groups(pos_d, layout, pos_d[idx], clayout, k)
            expect = _naive_knn(pos, batch, pos[idx.cpu()], clayout.batch.cpu(), k)
            got = [pi.cpu()[ci.cpu() == c] for c in range(idx.numel())]
            assert all(torch.equal(a, b) for a, b in zip(got, expect, strict=True))
    assert idx.device == pos_d.device
    if device.type == "cpu" or backend == "torch":  # CUDA's own kernel breaks ties otherwise
        assert torch.equal(idx.cpu(), ref_idx)


def test_segment_softmax_on_device(device):
    src = torch.randn(17, 3)
    _, batch = make_batch([10, 7])
    ref = segment_softmax(src, CloudLayout(batch, 2, None))
    got = segment_softmax(
        src.to(device), check_cloud(torch.zeros(17, 3, device=device), batch.to(device))
    )
    assert torch.allclose(got.cpu(), ref, atol=1e-6)


# --- pure-torch FPS / kNN equal to torch_cluster's CPU kernels ---------------------------


def _cluster_fps(pos, batch, num):
    import torch_cluster

    sizes = torch.bincount(batch)
    counts = sizes.clamp(max=num)
    ratio = (counts.float() - 0.5) / sizes.float()
    return torch_cluster.fps(pos, batch, ratio, False, sizes.numel())


@pytest.mark.parametrize("sizes", [[100, 100, 100], [100, 20, 50], [7, 300, 1], [1]])
@pytest.mark.parametrize("num", [1, 5, 32, 400])
def test_pure_fps_equals_torch_cluster(sizes, num):
    pos, batch = make_batch(sizes, seed=len(sizes) + num)
    sizes_t = torch.tensor(sizes)
    uniform = sizes[0] if len(set(sizes)) == 1 else None
    got = pure_sampling.fps(pos, sizes_t, num, uniform=uniform)
    assert torch.equal(got, _cluster_fps(pos, batch, num))
    if uniform is not None:  # the padded path gives the same as the reshaped one
        assert torch.equal(pure_sampling.fps(pos, sizes_t, num), got)


def test_pure_fps_ties_take_the_lowest_index_like_torch_cluster():
    # a 4x4x4 grid (many equal distances) and clouds made of repeated points
    g = torch.arange(4.0)
    grid = torch.cartesian_prod(g, g, g)
    dup = torch.tensor([[0.0, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0]]).repeat(3, 1)
    pos = torch.cat([grid, dup])
    batch = torch.cat([torch.zeros(64, dtype=torch.long), torch.ones(15, dtype=torch.long)])
    for num in (2, 9, 20, 64):
        got = pure_sampling.fps(pos, torch.tensor([64, 15]), num)
        assert torch.equal(got, _cluster_fps(pos, batch, num))


@pytest.mark.parametrize("sizes", [[64, 64], [40, 10, 25], [3]])
@pytest.mark.parametrize("k", [1, 8, 16, 70])
def test_pure_knn_equals_torch_cluster(sizes, k):
    import torch_cluster

    pos, batch = make_batch(sizes, seed=k)
    sizes_t = torch.tensor(sizes)
    centres, cbatch = pos[::3].contiguous(), batch[::3].contiguous()
    csizes = torch.bincount(cbatch, minlength=len(sizes))
    got = pure_sampling.knn(pos, sizes_t, centres, csizes, k)
    ref = torch_cluster.knn(pos, centres, k, batch, cbatch, batch_size=len(sizes))
    assert torch.equal(got, ref)


def test_pure_knn_ties_agree_on_distances_and_prefer_low_indices():
    import torch_cluster

    g = torch.arange(4.0)
    pos = torch.cartesian_prod(g, g, g)  # distances tie everywhere
    sizes = torch.tensor([64])
    got = pure_sampling.knn(pos, sizes, pos, sizes, 7)
    ref = torch_cluster.knn(
        pos, pos, 7, torch.zeros(64, dtype=torch.long), torch.zeros(64, dtype=torch.long)
    )
    assert torch.equal(got[0], ref[0])
    d_got = ((pos[got[1]] - pos[got[0]]) ** 2).sum(-1).view(64, 7)
    d_ref = ((pos[ref[1]] - pos[ref[0]]) ** 2).sum(-1).view(64, 7)
    assert torch.equal(d_got, d_ref)
    # within one distance, the lower index first
    for c in range(64):
        for dist in d_got[c].unique():
            same = got[1].view(64, 7)[c][d_got[c] == dist]
            assert torch.equal(same, same.sort().values)


def test_forced_torch_backend_never_calls_torch_cluster(monkeypatch):
    import torch_cluster

    def refuse(*args, **kwargs):
        raise AssertionError("torch_cluster called")

    pos, batch = make_batch([40, 25])
    layout = check_cloud(pos, batch)
    ref_idx, ref_layout = farthest_point_sample(pos, layout, 12)
    ref_knn = knn_groups(pos, layout, pos[ref_idx], ref_layout, 6)
    monkeypatch.setattr(torch_cluster, "fps", refuse)
    monkeypatch.setattr(torch_cluster, "knn", refuse)
    with sampling_backend("torch"):
        assert sampling_kernel(pos.device) == "torch"
        idx, clayout = farthest_point_sample(pos, layout, 12)
        edges = knn_groups(pos, layout, pos[idx], clayout, 6)
    assert torch.equal(idx, ref_idx) and torch.equal(clayout.batch, ref_layout.batch)
    assert all(torch.equal(a, b) for a, b in zip(edges[:2], ref_knn[:2], strict=True))
    assert edges[2] == ref_knn[2] == 6


def test_sampling_backend_env_and_names(monkeypatch):
    with pytest.raises(ValueError, match="sampling backend"), sampling_backend("gpu"):
        pass
    # a torch-cluster without CUDA kernels (cuda_version() is -1 in a CPU-only build)
    # leaves CUDA inputs to pure torch, whichever torch build is installed
    import torch_cluster  # noqa: F401

    if int(torch.ops.torch_cluster.cuda_version()) == -1:
        assert sampling_kernel(torch.device("cuda")) == "torch"
    assert sampling_kernel(torch.device("cpu")) == "cluster"
    assert sampling_kernel(torch.device("meta")) == "torch"


@pytest.mark.e2e
def test_missing_torch_cluster_falls_back_to_pure_torch_on_cpu():
    # a python in which `import torch_cluster` fails (as on an image without it): CPU FPS and
    # kNN must run through the pure-torch backend, with one warning, not raise ImportError
    code = textwrap.dedent(
        """
        import sys, warnings
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "torch_cluster" or name.startswith("torch_cluster."):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        import torch
        from pointea.ops import check_cloud, farthest_point_sample, knn_groups, sampling_kernel
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            assert sampling_kernel(torch.device("cpu")) == "torch"
        assert any("torch-cluster is not installed" in str(w.message) for w in seen)
        pos = torch.rand(50, 3)
        layout = check_cloud(pos, None)
        idx, clayout = farthest_point_sample(pos, layout, 8)
        edges = knn_groups(pos, layout, pos[idx], clayout, 4)
        assert idx.shape == (8,) and edges[0].numel() == 32
        print("ok")
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().endswith("ok")


def test_cuda_fps_coordinates_fit_the_kernel_and_keep_the_order():
    pos, batch = make_batch([60, 40])
    far = pos * 5000 + torch.tensor([1e4, -3e4, 7e3])  # a cloud thousands of units wide
    layout = check_cloud(far, batch)
    safe = cuda_fps_coordinates(far, layout)
    for b in range(2):
        part = safe[batch == b]
        assert float(torch.cdist(part, part).max()) ** 2 < CLUSTER_CUDA_FPS_MAX_DIST2
        assert torch.equal(part[0], torch.zeros(3))  # moved to start at the first point
    assert torch.equal(_cluster_fps(safe, batch, 20), _cluster_fps(far, batch, 20))
    small = check_cloud(pos, batch)  # clouds within 100 units are only moved
    assert torch.allclose(cuda_fps_coordinates(pos, small)[:60], pos[:60] - pos[0])


@pytest.mark.parametrize("k", [0, -3, 2.5, True])
def test_knn_rejects_bad_k(k):
    pos, batch = make_batch([10])
    layout = check_cloud(pos, batch)
    with pytest.raises(ValueError, match="k: must be an integer >= 1"):
        knn_groups(pos, layout, pos[:2], CloudLayout(batch[:2], 1, 2), k)
    with pytest.raises(ValueError, match="num_samples"):
        farthest_point_sample(pos, layout, k)


# --- host-device synchronisations ------------------------------------------------------


def test_layout_knows_its_sizes_without_bincount():
    pos, batch = make_batch([5, 3, 4])
    layout = check_cloud(pos, batch)
    assert layout.counts.tolist() == [5, 3, 4] and layout.uniform is None
    assert layout_of(None, 7, pos.device).sizes.tolist() == [7]
    assert CloudLayout(batch[:10], 2, 5).sizes.tolist() == [5, 5]


def test_input_checks_off_skips_value_checks_only():
    pos = torch.full((4, 3), float("nan"))
    with input_checks(False):
        assert not input_checks_enabled()
        check_cloud(pos)  # values are trusted
        with pytest.raises(InputError, match="shape"):
            check_cloud(torch.zeros(4, 2))  # shapes are still checked
    assert input_checks_enabled()
    with pytest.raises(InputError, match="non-finite"):
        check_cloud(pos)


def test_sampling_step_reads_the_device_twice_at_most():
    """check_cloud + FPS + kNN on equal-size clouds: 2 host reads (layout_of) without the
    value checks, 4 with them (the old code made 14)."""
    pos, batch = make_batch([64, 64])
    for checks, allowed in ((False, 2), (True, 4)):
        with input_checks(checks), HostReads() as reads:
            layout = check_cloud(pos, batch)
            idx, clayout = farthest_point_sample(pos, layout, 16)
            _, _, k_uniform = knn_groups(pos, layout, pos[idx], clayout, 8)
        assert k_uniform == 8
        assert len(reads.names) <= allowed, reads.names


def test_classifier_step_host_reads():
    """A tiny classifier's training step reads tensor values 2 times (22 before)."""
    from pointea.models import create_model

    model = create_model("pct_cls_tiny", num_classes=4)
    pos, batch = make_batch([200, 200])
    with input_checks(False), HostReads() as reads:
        model(None, pos, batch).sum().backward()
    assert len(reads.names) <= 2, reads.names


# --- autocast dtypes ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_segment_softmax_half_input_with_float32_exp(monkeypatch, dtype):
    """CUDA autocast runs exp in float32 on a half-precision src: the sum must follow."""
    src = torch.randn(12, 3)
    _, batch = make_batch([5, 7])
    layout = CloudLayout(batch, 2, None)
    exp = torch.exp
    monkeypatch.setattr(torch, "exp", lambda t: exp(t.float()))
    out = segment_softmax(src.to(dtype), layout)
    monkeypatch.setattr(torch, "exp", exp)
    ref = segment_softmax(src.to(dtype).float(), layout)
    assert out.dtype == torch.float32
    assert torch.allclose(out, ref, rtol=4 * torch.finfo(dtype).eps, atol=1e-5)
    lse = segment_logsumexp(src.to(dtype), layout)  # all in the half dtype
    assert lse.dtype == dtype


def test_pure_sampling_reads_nothing_back_on_equal_size_clouds():
    """The fallback on a GPU: FPS and kNN of equal-size clouds never wait for the device."""
    pos, batch = make_batch([50, 50, 50])
    layout = check_cloud(pos, batch)
    with sampling_backend("torch"), HostReads() as reads:
        idx, clayout = farthest_point_sample(pos, layout, 20)
        knn_groups(pos, layout, pos[idx], clayout, 10)
    assert reads.names == []
    sizes = torch.tensor([50, 50, 50])
    assert torch.equal(
        pure_sampling.knn(pos, sizes, pos[idx], clayout.sizes, 10, uniform=50),
        pure_sampling.knn(pos, sizes, pos[idx], clayout.sizes, 10),
    )


def test_pyg_ptr_saves_a_host_read():
    from torch_geometric.data import Batch, Data

    sizes = [30, 30, 30]
    data = Batch.from_data_list([Data(pos=torch.rand(n, 3)) for n in sizes])
    plain = check_cloud(data.pos, data.batch)
    with input_checks(False), HostReads() as reads:
        layout = check_cloud(data.pos, data.batch, ptr=data.ptr)
    assert len(reads.names) == 1, reads.names  # the uniform size only
    assert layout.num_clouds == 3 and layout.uniform == plain.uniform == 30
    assert torch.equal(layout.sizes, plain.sizes)
    ragged = Batch.from_data_list([Data(pos=torch.rand(n, 3)) for n in (5, 9)])
    assert check_cloud(ragged.pos, ragged.batch, ptr=ragged.ptr).sizes.tolist() == [5, 9]
    with pytest.raises(InputError, match="ptr: does not match"):
        check_cloud(ragged.pos, ragged.batch, ptr=torch.tensor([0, 6, 14]))


@pytest.mark.parametrize("sizes", [[64, 64, 64], [40, 3, 25]])
def test_pure_knn_blocks_by_memory_budget_give_the_same_edges(sizes):
    pos, batch = make_batch(sizes, seed=5)
    g = torch.arange(3.0)
    pos[:27] = torch.cartesian_prod(g, g, g)  # ties in the first cloud
    sizes_t = torch.tensor(sizes)
    centres, cbatch = pos[::2].contiguous(), batch[::2].contiguous()
    csizes = torch.bincount(cbatch, minlength=len(sizes))
    whole = pure_sampling.knn(pos, sizes_t, centres, csizes, 9)
    for budget in (1, 3000, 70_000):  # one centre, a few centres, two clouds at a time
        got = pure_sampling.knn(pos, sizes_t, centres, csizes, 9, memory_budget=budget)
        assert torch.equal(got, whole)
    if len(set(sizes)) == 1:  # the equal-size path, without padding
        same = pure_sampling.knn(
            pos, sizes_t, centres, csizes, 9, uniform=64, centre_uniform=32, memory_budget=1
        )
        assert torch.equal(same, whole)
    # ties: within one distance, the lower index first (the order of a stable sort)
    d = ((pos[whole[1]] - centres[whole[0]]) ** 2).sum(-1)
    for c in range(centres.size(0)):
        row, idx = d[whole[0] == c], whole[1][whole[0] == c]
        assert torch.all(row[1:] >= row[:-1])
        for value in row.unique():
            assert torch.equal(idx[row == value], idx[row == value].sort().values)


def test_pure_knn_in_float64_matches_float32_on_exact_coordinates():
    g = torch.arange(4.0)
    pos = torch.cartesian_prod(g, g, g)
    sizes = torch.tensor([64])
    got = pure_sampling.knn(pos.double(), sizes, pos.double(), sizes, 7, memory_budget=500)
    assert torch.equal(got, pure_sampling.knn(pos, sizes, pos, sizes, 7))


def test_ops_package_exports_each_concept_module():
    from pointea import ops
    from pointea.ops import layout, sampling, segment

    modules = (layout, sampling, segment)
    assert set(ops.__all__) == {name for m in modules for name in m.__all__}
    for module in modules:
        for name in module.__all__:
            value = getattr(module, name)
            assert getattr(ops, name) is value
            if callable(value):  # defined there, not imported from a sibling
                assert value.__module__ == module.__name__, name
