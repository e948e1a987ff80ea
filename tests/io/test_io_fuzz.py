"""Property-based tests: malformed files never crash, hang or leak a low-level exception.

For every reader, hypothesis builds a valid file from random points (NaN, inf and huge
values included), then damages it (truncates, flips bytes, inserts or deletes bytes,
replaces a token). Whatever comes out, ``load_points`` must either return a non-empty,
finite cloud or raise :class:`~pointea.errors.DataError` whose message names the file.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pointea_testing import off_text, pcd_bytes, ply_bytes, stl_ascii, stl_binary

from pointea import io
from pointea.errors import DataError

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

coords = st.floats(width=32, allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, 1.0, -1.0, 1e30, -3e38])
clouds = st.integers(0, 12).flatmap(
    lambda n: arrays(np.float64, (n, 3), elements=coords))


def _faces(n: int) -> list[list[int]]:
    return [[i, (i + 1) % max(n, 1), (i + 2) % max(n, 1)] for i in range(max(n - 2, 0))]


def _text_rows(p: np.ndarray, sep: str = " ") -> str:
    return "\n".join(sep.join(repr(float(v)) for v in r) for r in p) + "\n"


MAKERS = {
    "xyz": lambda p: _text_rows(p).encode(),
    "txt": lambda p: _text_rows(p, ",").encode(),
    "pts": lambda p: (f"{len(p)}\n" + _text_rows(p)).encode(),
    "ply": lambda p: ply_bytes(p, "ascii", faces=_faces(len(p)) or None),
    "ply_bin": lambda p: ply_bytes(p, "binary_little_endian", faces=_faces(len(p)) or None),
    "pcd": lambda p: pcd_bytes(p, "ascii"),
    "pcd_bin": lambda p: pcd_bytes(p, "binary"),
    "off": lambda p: off_text(p, _faces(len(p))).encode(),
    "obj": lambda p: ("".join(f"v {a!r} {b!r} {c!r}\n" for a, b, c in p)
                      + "".join(f"f {i + 1} {j + 1} {k + 1}\n" for i, j, k in _faces(len(p)))
                      ).encode(),
    "stl": lambda p: stl_binary(p[: len(p) // 3 * 3].reshape(-1, 3, 3)),
    "stl_ascii": lambda p: stl_ascii(p[: len(p) // 3 * 3].reshape(-1, 3, 3)).encode(),
}
SUFFIX = {"ply_bin": "ply", "pcd_bin": "pcd", "stl_ascii": "stl"}


@st.composite
def damaged(draw, kind: str) -> bytes:
    data = bytearray(MAKERS[kind](draw(clouds)))
    op = draw(st.sampled_from(["none", "truncate", "flip", "insert", "delete", "token"]))
    if op == "truncate" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif op == "flip" and data:
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif op == "insert":
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=12))
    elif op == "delete" and data:
        at = draw(st.integers(0, len(data) - 1))
        del data[at : at + draw(st.integers(1, 16))]
    elif op == "token":
        tokens = bytes(data).split(b" ")
        i = draw(st.integers(0, len(tokens) - 1))
        tokens[i] = draw(st.sampled_from([b"", b"x", b"-1", b"99999999999", b"1e999", b"nan",
                                          b"\xff\xfe", b"3.5", b"0"]))
        data = bytearray(b" ".join(tokens))
    return bytes(data)


def _check(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    start = time.perf_counter()
    try:
        cloud = io.load_points(path, 32, seed=0)
    except DataError as exc:
        assert str(exc).startswith(str(path)), str(exc)
    else:
        assert len(cloud) > 0 and np.all(np.isfinite(cloud.points))
        pos, _ = io.prepare_points(cloud.points, 32)
        assert np.all(np.isfinite(pos))
    assert time.perf_counter() - start < 5.0, "reader took too long (hang?)"


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_damaged_files(tmp_path, kind):
    path = tmp_path / f"f.{SUFFIX.get(kind, kind)}"

    @SETTINGS
    @given(content=damaged(kind))
    def run(content: bytes) -> None:
        _check(path, content)

    run()


@SETTINGS
@given(content=st.binary(max_size=300), suffix=st.sampled_from(sorted(set(SUFFIX.values())
                                                                       | set(MAKERS))))
def test_random_bytes(tmp_path, content, suffix):
    _check(tmp_path / f"r.{SUFFIX.get(suffix, suffix)}", content)


@SETTINGS
@given(header=st.integers(0, 2**40), kind=st.sampled_from(["ply", "off", "pcd", "stl"]))
def test_absurd_declared_counts_fail_fast(tmp_path, header, kind):
    """A header claiming far more data than the file holds fails at once, no allocation."""
    body = {
        "ply": (f"ply\nformat binary_little_endian 1.0\nelement vertex {header}\n"
                "property float x\nproperty float y\nproperty float z\nend_header\n").encode()
        + b"\0" * 24,
        "off": f"OFF\n{header} {header} 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n".encode(),
        "pcd": pcd_bytes(np.zeros((2, 3)), "binary").replace(b"POINTS 2", f"POINTS {header}"
                                                             .encode()),
        "stl": b"x" * 80 + (header % 2**32).to_bytes(4, "little") + b"\0" * 100,
    }[kind]
    _check(tmp_path / f"a.{kind}", body)
