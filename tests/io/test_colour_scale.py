"""Colour scales are decided by one rule (type first, then the whole range with a margin),
a doubt warns, a scale that cannot be told is refused, and the caller may say the scale."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pointea import io
from pointea.errors import DataError, InputError
from pointea.inference.scene_files import read_scene, write_scene_labels
from pointea.io.colors import ColourScaleWarning, check_colour_scale, unit_colors

XYZ = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def _text(path, rgb: list[str]) -> None:
    rows = [f"{x:g} {y:g} {z:g} {c}" for (x, y, z), c in zip(XYZ, rgb, strict=True)]
    path.write_text("\n".join(rows) + "\n")


def _ply_ascii(path, kind: str, rgb: list[str]) -> None:
    head = [
        "ply",
        "format ascii 1.0",
        f"element vertex {len(rgb)}",
        "property float x",
        "property float y",
        "property float z",
        f"property {kind} red",
        f"property {kind} green",
        f"property {kind} blue",
        "end_header",
    ]
    rows = [f"{x:g} {y:g} {z:g} {c}" for (x, y, z), c in zip(XYZ, rgb, strict=True)]
    path.write_text("\n".join(head + rows) + "\n")


def _no_warnings(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ColourScaleWarning)
        return fn(*args, **kw)


UNIT_OVERSHOOT = ["0.5 0.25 1.02", "1.0 0.0 0.0", "0.0 1.0 0.0", "0.2 0.4 0.6"]
DARK_255 = ["0 1 1", "1 1 1", "1 0 1", "1 1 0"]  # not unit vectors: not normals


# -- text files ---------------------------------------------------------------------------
def test_unit_colours_slightly_above_one_stay_unit_clipped_with_a_warning(tmp_path):
    path = tmp_path / "scan.txt"
    _text(path, UNIT_OVERSHOOT)
    with pytest.warns(ColourScaleWarning, match=r"scan\.txt: b \(column 6\) exceed 1.*clipped"):
        cloud = io.read_point_cloud(path)
    np.testing.assert_allclose(cloud.colors[0], [0.5, 0.25, 1.0])
    np.testing.assert_allclose(cloud.colors[3], [0.2, 0.4, 0.6])


def test_dark_integer_colours_are_0_255_with_a_warning(tmp_path):
    path = tmp_path / "dark.xyz"
    _text(path, DARK_255)
    with pytest.warns(ColourScaleWarning, match=r"dark\.xyz: every colour value .*0 or 1"):
        cloud = io.read_point_cloud(path)
    np.testing.assert_allclose(cloud.colors[1], [1 / 255] * 3)


def test_the_same_values_written_as_floats_are_unit_colours(tmp_path):
    path = tmp_path / "unit.txt"
    _text(path, ["0.0 1.0 1.0", "1.0 1.0 1.0", "1.0 0.0 1.0", "1.0 1.0 0.0"])
    cloud = _no_warnings(io.read_point_cloud, path)
    np.testing.assert_allclose(cloud.colors[1], [1.0, 1.0, 1.0])


def test_a_scale_that_cannot_be_told_is_refused_naming_file_and_columns(tmp_path):
    path = tmp_path / "odd.txt"
    _text(path, ["0.5 1.5 0.25", "0.1 0.2 0.3", "1.2 0.0 0.5", "0.7 0.7 0.7"])
    with pytest.raises(DataError, match=r"odd\.txt: cannot tell the colour scale of r \(column 4"):
        io.read_point_cloud(path)
    cloud = _no_warnings(io.read_point_cloud, path, colour_scale="255")
    np.testing.assert_allclose(cloud.colors[0], np.array([0.5, 1.5, 0.25]) / 255)


def test_the_caller_says_the_scale(tmp_path):
    dark, bright = tmp_path / "dark.txt", tmp_path / "bright.txt"
    _text(dark, DARK_255)
    _text(bright, ["10 20 30", "0 0 0", "1 2 3", "255 255 255"])
    unit = _no_warnings(io.read_point_cloud, dark, colour_scale="1")
    np.testing.assert_allclose(unit.colors[1], [1.0, 1.0, 1.0])
    byte = _no_warnings(io.load_points, dark, colour_scale="255")
    np.testing.assert_allclose(byte.colors[1], [1 / 255] * 3)
    with pytest.raises(
        DataError, match=r"bright\.txt: line 1: colour r \(column 4\) = 10 .*0\.\.1"
    ):
        io.read_point_cloud(bright, colour_scale="1")
    with pytest.raises(InputError, match="colour_scale must be one of auto, 1, 255"):
        io.read_point_cloud(dark, colour_scale="256")
    assert check_colour_scale(255) == "255"


def test_scene_colours_just_above_one_are_not_written_back_black(tmp_path):
    src, out = tmp_path / "room.txt", tmp_path / "out.txt"
    _text(src, UNIT_OVERSHOOT)
    with pytest.warns(ColourScaleWarning):
        cloud = read_scene(src)
    write_scene_labels(out, cloud, np.zeros(len(cloud), np.int64), np.zeros((1, 3)))
    rgb = np.loadtxt(out)[:, 3:6]
    np.testing.assert_array_equal(rgb[0], [128, 64, 255])
    np.testing.assert_array_equal(rgb[3], [51, 102, 153])


def test_scene_reader_takes_the_scale_too(tmp_path):
    path = tmp_path / "room.txt"
    _text(path, DARK_255)
    cloud = _no_warnings(read_scene, path, colour_scale="1")
    np.testing.assert_allclose(cloud.colors[1], [1.0, 1.0, 1.0])
    with pytest.warns(ColourScaleWarning, match="nearly black"):
        assert np.allclose(read_scene(path).colors[1], 1 / 255)


# -- PLY and PCD ------------------------------------------------------------------------
def test_ascii_ply_uchar_colours_are_0_255_even_when_all_are_0_or_1(tmp_path):
    path = tmp_path / "dark.ply"
    _ply_ascii(path, "uchar", DARK_255)
    with pytest.warns(ColourScaleWarning, match=r"property red \(uchar\)"):
        cloud = io.read_point_cloud(path)
    np.testing.assert_allclose(cloud.colors[1], [1 / 255] * 3)


def test_ply_float_colours_slightly_above_one_are_unit_colours(tmp_path):
    path = tmp_path / "unit.ply"
    _ply_ascii(path, "float", UNIT_OVERSHOOT)
    with pytest.warns(ColourScaleWarning, match=r"property blue \(float\) exceed 1"):
        cloud = io.read_point_cloud(path)
    np.testing.assert_allclose(cloud.colors[0], [0.5, 0.25, 1.0])


def test_ply_float_colours_clearly_0_255_and_binary_uchar(tmp_path):
    path = tmp_path / "bytes.ply"
    _ply_ascii(path, "float", ["200.5 0 0", "10 20 30", "0 0 0", "255 255 255"])
    cloud = _no_warnings(io.read_point_cloud, path)
    np.testing.assert_allclose(cloud.colors[0], [200.5 / 255, 0, 0])
    out = io.write_ply(
        tmp_path / "bin.ply",
        XYZ,
        colors=np.array([[0, 1, 0], [1, 1, 1], [0, 0, 0], [1, 0, 1]], np.uint8),
    )
    with pytest.warns(ColourScaleWarning, match="nearly black"):
        assert np.allclose(io.read_point_cloud(out).colors[1], 1 / 255)


def test_ply_colours_out_of_range_are_refused_not_clipped(tmp_path):
    path = tmp_path / "neg.ply"
    _ply_ascii(path, "float", ["0.5 0.5 0.5", "0.1 -0.2 0.3", "0 0 0", "1 1 1"])
    with pytest.raises(DataError, match=r"neg\.ply: point index 1: colour property green"):
        io.read_point_cloud(path)


def test_a_mesh_reader_does_not_need_the_colours(tmp_path):
    path = tmp_path / "mesh.ply"
    _ply_ascii(path, "float", ["0.5 1.5 0.25", "0.1 0.2 0.3", "1.2 0.0 0.5", "0.7 0.7 0.7"])
    text = path.read_text().replace(
        "end_header", "element face 1\nproperty list uchar int vertex_indices\nend_header"
    )
    path.write_text(text + "3 0 1 2\n")
    assert len(io.read_mesh(path).faces) == 1
    assert len(io.load_points(path, 16)) == 16
    with pytest.raises(DataError, match="cannot tell the colour scale"):
        io.read_point_cloud(path)


def test_pcd_packed_rgb_is_bytes(tmp_path):
    path = tmp_path / "c.pcd"
    packed = (1 << 16) | (1 << 8) | 0
    path.write_text(
        "VERSION .7\nFIELDS x y z rgb\nSIZE 4 4 4 4\nTYPE F F F U\nCOUNT 1 1 1 1\n"
        f"WIDTH 1\nHEIGHT 1\nPOINTS 1\nDATA ascii\n0 0 0 {packed}\n"
    )
    cloud = _no_warnings(io.read_point_cloud, path, colour_scale="1")
    np.testing.assert_allclose(cloud.colors[0], [1 / 255, 1 / 255, 0])


# -- the rule itself ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "integer", "want"),
    [
        ([[0.0, 0.5, 1.0]], False, [0.0, 0.5, 1.0]),
        ([[0.0, 0.5, 1.05]], False, [0.0, 0.5, 1.0]),
        ([[0.0, 2.0, 1.0]], False, [0.0, 2 / 255, 1 / 255]),
        ([[0.0, 2.5, 1.0]], False, [0.0, 2.5 / 255, 1 / 255]),
        ([[0.0, 128.0, 255.0]], True, [0.0, 128 / 255, 1.0]),
    ],
)
def test_unit_colors_table(values, integer, want):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ColourScaleWarning)
        got = unit_colors(np.array(values), "f.txt", integer=integer)
    np.testing.assert_allclose(got[0], want)


@pytest.mark.parametrize("bad", [[[0.0, 1.06, 1.5]], [[0.0, np.nan, 1.0]], [[0.0, 256.0, 1.0]]])
def test_unit_colors_refusals(bad):
    with pytest.raises(DataError, match=r"^f\.txt: "):
        unit_colors(np.array(bad), "f.txt")


# -- through the predictor and pointea-predict --------------------------------------------
def test_the_predictor_reads_files_with_its_colour_scale(tmp_path):
    from pointea.inference import Predictor
    from pointea.models import create_model

    path = tmp_path / "room.txt"
    _text(path, DARK_255)
    model = create_model("pct_semseg_tiny", num_classes=3)
    unit = Predictor(model, num_points=None, colour_scale="1")
    np.testing.assert_allclose(_no_warnings(unit.predict_file, path).cloud.colors[1], 1.0)
    with pytest.raises(InputError, match="colour_scale"):
        Predictor(model, num_points=None, colour_scale="0..1")


def test_pointea_predict_takes_colour_scale():
    from pointea.cli.predict import build_parser

    parser = build_parser()
    assert parser.parse_args(["ck.pt", "a.txt"]).colour_scale == "auto"
    assert parser.parse_args(["ck.pt", "a.txt", "--colour-scale", "255"]).colour_scale == "255"
    with pytest.raises(SystemExit):
        parser.parse_args(["ck.pt", "a.txt", "--colour-scale", "100"])


@pytest.mark.slow
def test_pointea_predict_passes_colour_scale_to_the_reader(
    tmp_path, semseg_checkpoint, capsys, monkeypatch
):
    from pointea.cli.predict import main

    monkeypatch.chdir(tmp_path)  # the scene flow's default PNG goes to ./predictions/
    src = tmp_path / "room.txt"
    _text(src, DARK_255)
    for scale, want in (("1", 255), ("255", 1)):
        out = tmp_path / f"labels{scale}.txt"
        args = [str(semseg_checkpoint), str(src), "--device", "cpu", "--json", "--output", str(out)]
        assert main([*args, "--colour-scale", scale]) == 0
        assert np.loadtxt(out)[1, 3:6].tolist() == [want] * 3
