"""The benchmark's pieces run (tiny sizes); numbers themselves are not asserted."""

import pytest

from pointea.bench import run


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
    assert res["seconds"] > 0 and res["peak_bytes"] >= 0
    step = run._child_step(
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
    dense = run._child_step(
        {
            "model": "pct_cls",
            "impl": "dense",
            "attention": "external",
            "batch": 2,
            "points": 600,
            "mode": "infer",
            "reps": 1,
        }
    )
    assert dense["seconds"] > 0


def test_failed_child_reports_error():
    res = run.measure({"kind": "matmul", "dtype": "no_such_dtype", "reps": 1}, threads=1)
    assert "error" in res


def test_table_format():
    text = run.table(["a", "bb"], [["1", "2"], ["333", "4"]])
    assert text.splitlines()[0] == "| a   | bb |"
    assert len({len(line) for line in text.splitlines()}) == 1
