"""Messages about a row of a text file name the file's own line (1-based, header and
comment lines counted), and a token Python's ``float`` would stretch to a number
(``1_00``, non-ASCII digits) is refused like any other non-number."""

from __future__ import annotations

import numpy as np
import pytest

from pointea import io
from pointea.errors import DataError
from pointea.inference.scene_files import read_scene

# line 1 header, 2 comment, 3 blank, 4..6 rows: the NaN sits on line 6
NAN_ON_LINE_6 = "x y z\n# scanned\n\n0 0 0\n1 0 0\n0 nan 1\n"


@pytest.mark.parametrize("name", ["a.txt", "a.xyz", "a.pts"])
def test_a_nan_coordinate_is_named_by_its_line(tmp_path, name):
    path = tmp_path / name
    path.write_text(NAN_ON_LINE_6)
    with pytest.raises(DataError, match=r"first: line 6, NaN"):
        io.read_point_cloud(path)
    with pytest.raises(DataError, match=r"first: line 6, NaN"):
        io.load_points(path)


def test_lines_are_counted_as_the_file_counts_them(tmp_path):
    # a form feed repaired away and a Unicode line separator inside a comment do not
    # start lines of their own; CRLF ends count once
    path = tmp_path / "b.txt"
    path.write_bytes("# note\u2028more\r\n0 0 0\r\n1\x0c 0 0\r\n2 0 0\r\n0 inf 0\r\n".encode())
    with (
        pytest.warns(UserWarning, match="line 3"),
        pytest.raises(DataError, match=r"first: line 5, infinite"),
    ):
        io.read_point_cloud(path)


def test_line_numbers_survive_dropping_points(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("# c\n0 0 nan\n1 0 0\n2 0 0\n")
    with pytest.warns(UserWarning, match="dropped 1"):
        cloud = io.load_points(path, drop_nonfinite=True)
    assert cloud.line_of is not None and cloud.line_of(0) == 3 and cloud.line_of(1) == 4


def test_scene_messages_name_lines(tmp_path):
    nan = tmp_path / "nan.txt"
    nan.write_text("// room\n0 0 0 1 2 3\n0 0 0 1 2 3\n\nnan 1 1 1 2 3\n")
    with pytest.raises(DataError, match=r"first: line 5, NaN"):
        read_scene(nan)
    colour = tmp_path / "colour.txt"
    colour.write_text("x y z r g b\n# c\n0 0 0 1 2 3\n0 0 0 1 2 300\n")
    with pytest.raises(DataError, match=r"colour\.txt: line 4: colour b \(column 6\) = 300"):
        read_scene(colour)


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("under.txt", "x;y;z\n0;0;0\n1;1_00;1\n", 3),  # semicolons: the line-by-line parser
        ("under.xyz", "0 0 0\n# c\n1 1_00 1\n", 3),
        ("comma.txt", "0,0,0\n1,2,3\n4,1_00,6\n", 3),
        ("digits.txt", "0 0 0\n1 \u0663 1\n", 2),  # an Arabic-Indic three
        ("wide.txt", "0 0 0\n1 \uff11\uff12 1\n", 2),  # fullwidth digits
    ],
)
def test_tokens_float_stretches_are_not_numbers(tmp_path, name, content, line):
    path = tmp_path / name
    path.write_bytes(content.encode())
    with pytest.raises(DataError, match=rf"line {line}: '.+' is not a number"):
        io.read_point_cloud(path)


def test_meshes_refuse_underscored_numbers_too(tmp_path):
    obj = tmp_path / "m.obj"
    obj.write_text("v 0 0 0\nv 1 0 0\nv 0 1_0 0\nf 1 2 3\n")
    with pytest.raises(DataError, match=r"line 3: '1_0' is not a number"):
        io.read_mesh(obj)
    off = tmp_path / "m.off"
    off.write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1_0 0\n3 0 1 2\n")
    with pytest.raises(DataError, match=r"line 5: '1_0' is not a number"):
        io.read_mesh(off)
    ply = tmp_path / "m.ply"
    ply.write_text(
        "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
        "property float z\nend_header\n0 0 0\n1 1_0 0\n"
    )
    with pytest.raises(DataError, match=r"line 9: '1_0' is not a number"):
        io.read_point_cloud(ply)


def test_plain_numbers_still_read(tmp_path):
    path = tmp_path / "ok.txt"
    path.write_text("0 0 0\n+1.5e2 -.5 inf\n1. 2 NaN\n")
    cloud = io.read_point_cloud(path, check=False)
    np.testing.assert_array_equal(cloud.points[1, :2], [150.0, -0.5])
    assert np.isinf(cloud.points[1, 2]) and np.isnan(cloud.points[2, 2])
