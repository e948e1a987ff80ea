"""The scenes benchmark section: its children (tiny rooms), its table and its CLI."""

from __future__ import annotations

import argparse
import json

import pytest

from pointea.bench import harness, scenes


def test_room_child_times_counts_and_predicts_every_point():
    peaks = {}
    for attention in ("external", "self"):
        res = scenes._child_room(
            {"model": "pct_semseg_tiny", "attention": attention, "n": 3000, "chunk": 1000}
        )
        assert res["points"] == 3000
        assert res["seconds"] > 0 and res["flops"] > 1e8
        assert isinstance(res["peak_bytes"], int)
        peaks[attention] = res["peak_bytes"]
    # self-attention holds chunk x n maps (tens of MiB here); external attention does not
    assert peaks["self"] > peaks["external"] + 8 * 2**20


def test_exact_child_streamed_equals_one_plain_forward():
    res = scenes._child_exact({"model": "pct_semseg_tiny", "n": 4000, "chunk": 1500})
    assert res["points"] == 4000 and res["chunks"] == 3
    assert res["max_abs_logit"] > 0
    assert res["max_abs_diff"] <= 1e-4 * max(1.0, res["max_abs_logit"])
    assert res["argmax_agreement"] > 0.999


def test_section_measures_sa_only_while_its_map_fits(tmp_path, monkeypatch):
    specs = []

    def fake_measure(spec, threads, timeout=1800):
        specs.append(spec)
        if spec["kind"] == "scene_exact":
            return {
                "points": spec["n"],
                "chunks": 2,
                "plain_seconds": 3.0,
                "plain_peak_bytes": 2**31,
                "max_abs_diff": 2e-6,
                "max_abs_logit": 5.0,
                "argmax_agreement": 1.0,
            }
        if spec["n"] == 2_000_000:
            return {"error": "killed by signal 9 (out of memory?)"}
        peak = 1.5 * 2**30 if spec["n"] == 1_000_000 else 0.5 * 2**30
        return {"seconds": 2.0, "peak_bytes": peak, "flops": 4e9, "points": spec["n"]}

    monkeypatch.setattr(scenes, "measure", fake_measure)
    monkeypatch.setattr(scenes, "ceilings", lambda rep, args: {"float32": 4.0})
    rep = harness.Report(tmp_path)
    args = argparse.Namespace(
        threads=1,
        device="cpu",
        quick=False,
        memory_budget_gib=4.0,
        scene_sizes=[20_000, 1_000_000, 2_000_000],
    )
    scenes.section_scenes(rep, args)

    rooms = [s for s in specs if s["kind"] == "scene_room"]
    assert [(s["n"], s["attention"]) for s in rooms] == [
        (20_000, "external"),
        (20_000, "self"),  # 1.5 GiB map: fits 4 GiB
        (1_000_000, "external"),
        (2_000_000, "external"),
    ]
    assert {s["model"] for s in rooms} == {"pct_semseg"} and {s["chunk"] for s in rooms} == {
        scenes.CHUNK
    }
    exact = [s for s in specs if s["kind"] == "scene_exact"]
    assert [s["n"] for s in exact] == [scenes.EXACT_SIZE]
    text = rep.parts[-1]
    assert "one N x N map needs 3.6 TiB" in text  # 4 * 1e6^2 bytes, SA at 1e6
    assert "killed by signal 9" in text
    assert "1,000,000 points: 1.5 GiB" in text
    assert " met" not in text and "target" not in text.lower()  # measurements, not verdicts
    assert "2 (50%)" in text  # 4 GFLOP in 2 s against a 4 GFLOP/s ceiling
    assert "up to 2e-06" in text and "100.0000%" in text
    assert [d["attention"] for d in rep.data["scenes"]].count("self") == 3


def test_section_without_flop_count(tmp_path, monkeypatch):
    specs = []

    def fake_measure(spec, threads, timeout=1800):
        specs.append(spec)
        return {"seconds": 1.0, "peak_bytes": 2**20, "flops": None, "points": spec["n"]}

    monkeypatch.setattr(scenes, "measure", fake_measure)
    monkeypatch.setattr(scenes, "ceilings", lambda rep, args: {"float32": 4.0})
    rep = harness.Report(tmp_path)
    args = argparse.Namespace(
        threads=1,
        device="cpu",
        quick=True,
        memory_budget_gib=1.0,
        no_flops=True,
        scene_exact_size=0,
    )
    scenes.section_scenes(rep, args)
    assert [s["n"] for s in specs] == [scenes.QUICK_SIZES[0], scenes.QUICK_SIZES[1]]
    assert all(s["count_flops"] is False for s in specs)  # no exactness child either
    assert "FLOPs not counted (--no-flops)" in rep.parts[-1]


def test_large_room_line_gives_the_peak_memory_without_a_verdict():
    line = scenes._large_line(
        [{"n": 2_000_000, "attention": "external", "peak_bytes": 5 * 2**30, "seconds": 1.0}]
    )
    assert "2,000,000 points: 5.0 GiB." in line
    assert "met" not in line
    assert "not measured" in scenes._large_line([{"n": 1000, "attention": "external"}])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sizes", "abc"], "--sizes"),
        (["--sizes", "0,10"], "--sizes"),
        (["--chunk", "0"], "--chunk"),
        (["--exact-size", "-1"], "--exact-size"),
    ],
)
def test_cli_rejects_bad_settings(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit):
        scenes.main([*argv, "--output-dir", str(tmp_path)])
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_cli_writes_the_table_and_the_exactness_check(tmp_path):
    out = tmp_path / "bench"
    argv = ["--sizes", "3000", "--model", "pct_semseg_tiny", "--chunk", "1000"]
    argv += ["--threads", "1", "--memory-budget-gib", "1", "--output-dir", str(out)]
    assert scenes.main(argv) == 0
    report = json.loads((out / "benchmark.json").read_text())
    ea = next(d for d in report["scenes"] if d["attention"] == "external")
    sa = next(d for d in report["scenes"] if d["attention"] == "self")
    assert ea["points"] == sa["points"] == 3000 and ea["seconds"] > 0 and sa["flops"] > 0
    exact = report["scenes_exact"]
    assert exact["n"] == 3000 and exact["chunks"] == 3
    assert exact["max_abs_diff"] <= 1e-4 * max(1.0, exact["max_abs_logit"])
    assert "matmul_ceiling" in report
    assert "Whole-room semantic segmentation" in (out / "benchmark.md").read_text()
