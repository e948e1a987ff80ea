"""The models section's ``--compile`` rows: placed beside their eager rows, and they run."""

from pointea.bench import run
from pointea.bench.models import _variants


def test_compiled_rows_sit_beside_their_eager_rows():
    assert not any(v[4] for v in _variants("cpu"))
    rows = _variants("cpu", compiled=True)
    eager = rows.index(("pct_cls", "packed", "external", None, False))
    assert rows[eager + 1] == ("pct_cls", "packed", "external", None, True)
    eager16 = rows.index(("pct_cls", "packed", "external", "bf16", False))
    assert rows[eager16 + 1] == ("pct_cls", "packed", "external", "bf16", True)
    assert len(rows) == len(_variants("cpu")) + 2


def test_compile_flag_parses():
    assert run.build_parser().parse_args(["--compile"]).compile is True
    assert run.build_parser().parse_args([]).compile is False
