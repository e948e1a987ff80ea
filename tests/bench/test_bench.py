"""The benchmark's pieces run (tiny sizes); timings are not asserted, memory is bounded."""

import argparse

import pytest
import torch

from pointea.bench import harness, run
from pointea.bench.models import _child_step
from pointea.bench.scaling import _child_stream


@pytest.mark.slow
def test_child_measurements_run():
    res = run.measure(
        {
            "kind": "attention",
            "attention": "external",
            "n": 256,
            "channels": 16,
            "memory_units": 8,
            "reps": 1,
        },
        threads=1,
    )
    assert res["seconds"] > 0 and res["flops"] > 0
    # a 256-point attention touches a few MiB: the child's own peak, not the parent's size
    assert isinstance(res["peak_bytes"], int) and res["peak_bytes"] < 64 * 2**20
    step = _child_step(
        {
            "model": "pct_cls_tiny",
            "attention": "self",
            "batch": 2,
            "points": 300,
            "mode": "train",
            "reps": 1,
            "count_flops": True,
        }
    )
    assert step["seconds"] > 0 and step["flops"] > 0
    dense = _child_step(
        {
            "model": "pct_cls",
            "impl": "dense",
            "attention": "external",
            "batch": 2,
            "points": 600,
            "mode": "infer",
            "reps": 1,
            "amp": "bf16",
            "count_flops": True,
        }
    )
    assert dense["seconds"] > 0 and dense["flops"] > 0


@pytest.mark.slow
def test_stream_child_counts_flops():
    res = _child_stream({"task": "segmentation", "n": 3000, "chunk": 1000, "amp": "bf16"})
    assert res["seconds"] > 0 and res["flops"] > 1e9
    assert set(res["pass_seconds"]) == set(res["pass_flops"]) == {"normalisers", "pools", "logits"}
    assert res["flops"] == pytest.approx(sum(res["pass_flops"].values()))
    assert res["rows"] == {"cached": 3000, "spilled": 0, "recomputed": 0}


@pytest.mark.slow
def test_stream_child_flops_count_the_recomputed_points():
    # half the points uncached: recomputing them costs FLOPs, spilling them does not
    spec = {"task": "segmentation", "n": 2000, "chunk": 500, "cache_bytes": 1000 * 512 * 4}
    spilled = _child_stream({**spec, "spill": True})
    recomputed = _child_stream({**spec, "spill": False})
    assert spilled["rows"] == {"cached": 1000, "spilled": 1000, "recomputed": 0}
    assert recomputed["rows"] == {"cached": 1000, "spilled": 0, "recomputed": 1000}
    extra = recomputed["pass_flops"]["logits"] - spilled["pass_flops"]["logits"]
    assert extra > 1000 * 2 * 512 * 1024  # at least the fusion product of 1000 points


@pytest.mark.e2e
def test_failed_child_reports_error():
    res = run.measure({"kind": "matmul", "dtype": "no_such_dtype", "reps": 1}, threads=1)
    assert "error" in res


def test_table_format():
    text = run.table(["a", "bb"], [["1", "2"], ["333", "4"]])
    assert text.splitlines()[0] == "| a   | bb |"
    assert len({len(line) for line in text.splitlines()}) == 1


def test_share_of_ceiling():
    assert harness.share(2e9, 1.0, 4.0) == "2 (50%)"
    assert harness.share(None, 1.0, 4.0) == "-"
    assert harness.share(2e9, 1.0, None) == "2"


def test_sections_registered_and_help_shows_defaults(capsys):
    sections = run.load_sections()
    assert {"attention", "models", "breakdown", "scaling"} <= set(sections)
    assert {"matmul", "attention", "step", "breakdown", "seg_infer", "stream"} <= set(
        harness.CHILDREN
    )
    with pytest.raises(SystemExit):
        run.main(["--help"])
    out = capsys.readouterr().out
    assert "(default: cpu)" in out or "(default: cuda)" in out


def test_section_registration_plugs_in(tmp_path):
    @harness.section("test_only")
    def section_test_only(rep, args):
        rep.add(harness.table(["x"], [[args.device]]))

    try:
        assert run.main(["--sections", "test_only", "--output-dir", str(tmp_path)]) == 0
        assert "| x" in (tmp_path / "benchmark.md").read_text()
    finally:
        del harness.SECTIONS["test_only"]


def test_cuda_device_refused_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(SystemExit):
        run.main(["--device", "cuda", "--sections", "attention"])


def test_autocast_and_timing_on_cpu():
    with harness.autocast("cpu", "bf16"):
        out = torch.ones(4, 4) @ torch.ones(4, 4)
    assert out.dtype == torch.bfloat16
    with harness.autocast("cpu", None):
        assert (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.float32
    with pytest.raises(ValueError, match="amp"):
        harness.autocast("cpu", "fp8")
    sec, peak = harness.timed(lambda: torch.ones(10).sum(), reps=2, device="cpu")
    assert sec > 0 and isinstance(peak, int)


def test_cpu_peak_is_the_memory_the_timed_code_touches():
    mib = 2**20
    freed = torch.ones(64 * mib)  # 256 MiB, freed before timing: not part of the peak
    del freed
    sec, peak = harness.timed(lambda: torch.ones(16 * mib).sum(), reps=2, device="cpu")
    assert sec > 0
    assert 60 * mib <= peak < 160 * mib  # one 64 MiB tensor alive at a time


def test_ceilings_measured_once(tmp_path, monkeypatch):
    calls = []

    def fake_measure(spec, threads, timeout=1800):
        calls.append(spec["dtype"])
        return {"seconds": 1.0, "gflops": 10.0}

    monkeypatch.setattr(harness, "measure", fake_measure)
    rep = harness.Report(tmp_path)
    args = argparse.Namespace(device="cpu", threads=1)
    assert harness.ceilings(rep, args) == {"float32": 10.0, "bf16": 10.0}
    assert harness.ceilings(rep, args) == {"float32": 10.0, "bf16": 10.0}
    assert calls == ["float32", "bfloat16"]


def test_matmul_ceiling_size_per_device(tmp_path, monkeypatch):
    assert harness.MATMUL_SIZE == {"cuda": 8192, "cpu": 4096}
    res = harness._child_matmul({"dtype": "float32", "reps": 1, "size": 256})
    assert res["size"] == 256 and res["gflops"] > 0
    monkeypatch.setattr(harness, "measure", lambda spec, threads: {"gflops": 1.0, "size": 1})
    rep = harness.Report(tmp_path)
    harness.ceilings(rep, argparse.Namespace(device="cpu", threads=1))
    assert "square products up to 4096, on cpu" in rep.parts[-1]


def test_flop_count_includes_in_place_addmm():
    a, b, c = torch.randn(8, 4), torch.randn(4, 5), torch.randn(8, 5)
    assert harness.count_flops(lambda: c.addmm_(a, b)) == 2 * 8 * 4 * 5
    assert harness.count_flops(lambda: torch.addmm(c, a, b)) == 2 * 8 * 4 * 5


def test_stream_sweep_table_from_child_results(tmp_path, monkeypatch):
    from pointea.bench import scaling

    specs = []

    def fake_measure(spec, threads, timeout=1800):
        if spec["kind"] == "matmul":
            return {"seconds": 1.0, "gflops": 100.0}
        specs.append(spec)
        if spec["chunk"] == 1024:
            return {"error": "killed by signal 9 (out of memory?)"}
        passes = {"normalisers": 1.0, "pools": 2.0, "logits": 1.0}
        return {
            "seconds": 4.0,
            "peak_bytes": 2**30,
            "flops": 2e11,
            "pass_seconds": passes,
            "pass_flops": {k: 5e10 * v for k, v in passes.items()},
        }

    monkeypatch.setattr(scaling, "measure", fake_measure)
    monkeypatch.setattr(harness, "measure", fake_measure)
    rep = harness.Report(tmp_path)
    args = argparse.Namespace(device="cpu", threads=1, quick=False, chunk=4096)
    scaling.section_stream_sweep(rep, args)
    runs = [(s["n"], s["chunk"], s["spill"]) for s in specs]
    assert runs[-3:] == [(2**20, 4096, False), (2**20, 16384, False), (2**20, 16384, True)]
    assert all(s["cache_bytes"] == 2**30 * s["n"] // 2**20 for s in specs)  # half cached
    text = rep.parts[-1]
    assert "killed by signal 9" in text and "50 (50%)" in text  # 200 GFLOP in 4 s of 100
    assert "1.00 s, 50 (50%)" in text  # a pass: 50 GFLOP in 1 s


def test_sampling_child_reports_the_plan_and_its_graph_breaks():
    """The classifier's forward with the sampling computed ahead is one graph; with its
    own sampling the kernels run outside the graph (a break per stage and more)."""
    from pointea.bench.sampling import _child_sampling_step

    spec = {"model": "pct_cls_tiny", "batch": 2, "points": 128, "reps": 1}
    ahead = _child_sampling_step({**spec, "plan": True})
    inside = _child_sampling_step({**spec, "plan": False})
    assert ahead["graph_breaks"] == 0 and ahead["graphs"] == 1
    assert inside["graph_breaks"] > 0
    assert ahead["plan_seconds_per_cloud"] > 0 and inside["plan_seconds_per_cloud"] is None
    assert ahead["seconds"] > 0 and inside["seconds"] > 0
