"""``pointea-predict`` with a scene checkpoint: outputs that match the library, and the
errors for every kind of bad scene input or flag."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pointea_testing import scene_arrays, write_classifier_checkpoint, write_scene_txt

from pointea.cli.predict import build_parser, main
from pointea.datasets.s3dis import CLASSES
from pointea.inference import Predictor
from pointea.inference.scene_files import read_scene
from pointea.io import write_ply

pytestmark = pytest.mark.e2e  # pointea-predict runs on whole scenes


@pytest.fixture(autouse=True)
def _numpy_renderer(monkeypatch):
    monkeypatch.setenv("POINTEA_RENDER_BACKEND", "numpy")


@pytest.fixture(scope="module")
def ckpt(semseg_checkpoint):
    return semseg_checkpoint


@pytest.fixture(scope="module")
def cls_ckpt(tmp_path_factory):
    return write_classifier_checkpoint(tmp_path_factory.mktemp("cls") / "best.pt")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("scenes")
    xyz, rgb, labels = scene_arrays(700)
    write_ply(d / "office.ply", xyz, colors=rgb)
    write_scene_txt(d / "hall.txt", xyz, rgb, labels)
    return d, xyz, rgb, labels


@pytest.fixture(scope="module")
def expected(ckpt, files):
    """The library's labels for the scene (what the CLI must write)."""
    _, xyz, rgb, _ = files
    return Predictor.from_pretrained(ckpt, device="cpu").segment_scene(xyz, rgb).labels


def test_ply_scene_prints_counts_and_writes_ply_and_png(ckpt, files, expected, tmp_path, capsys):
    d = files[0]
    rc = main([str(ckpt), str(d / "office.ply"), "--out-dir", str(tmp_path), "--size", "40", "30"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "office.ply: 700 points" in out
    for i, name in enumerate(CLASSES):  # every class, with its count
        assert f"  {name:<12s} {int((expected == i).sum()):>12,d}" in out
    back = read_scene(tmp_path / "office.ply", num_classes=13)
    assert (back.labels == expected).all()
    assert (tmp_path / "office.png").stat().st_size > 0
    assert "against the truth" not in out


def test_txt_with_labels_prints_metrics_and_json_matches(ckpt, files, expected, tmp_path, capsys):
    d, _, _, labels = files
    rc = main([str(ckpt), str(d / "hall.txt"), "--out-dir", str(tmp_path), "--json", "--no-png"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["kind"] == "semseg" and doc["failed"] == 0
    res = doc["results"][0]
    assert res["class_counts"] == {c: int((expected == i).sum()) for i, c in enumerate(CLASSES)}
    assert res["overall_accuracy"] == pytest.approx((expected == labels).mean(), abs=1e-6)
    assert 0 <= res["mean_iou"] <= 1 and set(res["per_class_iou"]) == set(CLASSES)
    assert res["output"].endswith("hall.ply") and "png" not in res
    rc = main([str(ckpt), str(d / "hall.txt"), "--out-dir", str(tmp_path), "--no-ply",
               "--no-png"])  # fmt: skip
    assert rc == 0 and "against the truth: OA" in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".txt", ".npy", ".xyz"])
def test_output_formats_match_the_library(ckpt, files, expected, tmp_path, suffix):
    d, xyz, rgb, _ = files
    out, png = tmp_path / f"labels{suffix}", tmp_path / "view.png"
    argv = [str(ckpt), str(d / "office.ply"), "--output", str(out), "--render", str(png)]
    assert main(argv + ["--size", "40", "30"]) == 0
    if suffix == ".npy":
        assert (np.load(out) == expected).all()
    else:
        table = np.loadtxt(out)
        assert (table[:, 6] == expected).all() and (table[:, 3:6] == rgb).all()
        assert np.allclose(table[:, :3], xyz, atol=1e-5)
    assert png.stat().st_size > 0
    assert not (tmp_path / "office.ply").exists()  # --output replaces the default


def test_truth_file_and_error_render(ckpt, files, tmp_path, capsys):
    d, _, _, labels = files
    np.save(tmp_path / "truth.npy", labels)
    argv = [str(ckpt), str(d / "office.ply"), "--truth", str(tmp_path / "truth.npy"),
            "--render", str(tmp_path / "cmp.png"), "--no-ply", "--size", "40", "30"]  # fmt: skip
    assert main(argv) == 0
    assert "against the truth" in capsys.readouterr().out
    from matplotlib.image import imread

    cmp = imread(tmp_path / "cmp.png")
    main([str(ckpt), str(d / "office.ply"), "--render", str(tmp_path / "plain.png"),
          "--no-ply", "--size", "40", "30"])  # fmt: skip
    assert cmp.shape[1] > imread(tmp_path / "plain.png").shape[1]  # truth + errors columns


def test_html_page_subsamples(ckpt, files, tmp_path, capsys):
    d = files[0]
    page = tmp_path / "rooms.html"
    argv = [str(ckpt), str(d), "--html", str(page), "--html-points", "50", "--no-ply", "--no-png"]
    assert main(argv) == 0
    text = page.read_text()
    assert "50 of 700 points shown" in text and "hall.txt" in text and "office.ply" in text
    assert f"wrote {page}" in capsys.readouterr().out


def test_folder_of_scenes_and_progress_flag(ckpt, files, tmp_path, capsys):
    d = files[0]
    assert main([str(ckpt), str(d), "--out-dir", str(tmp_path), "--no-png", "--progress",
                 "--chunk-size", "400"]) == 0  # fmt: skip
    cap = capsys.readouterr()
    assert "hall.txt" in cap.out and "office.ply" in cap.out
    assert "chunks" in cap.err  # the bar over the streamed pass
    assert {p.name for p in tmp_path.iterdir()} == {"hall.ply", "office.ply"}


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("gray.txt", "0 0 0\n1 2 1\n3 1 2\n", "needs colours"),
        ("nan.txt", "0 0 0 1 2 3\nnan 1 1 1 2 3\n5 3 2 1 1 1\n", "NaN"),
        ("empty.txt", "", "empty"),
        ("bright.txt", "0 0 0 1 2 3\n1 1 1 256 2 3\n", "outside 0..255"),
        ("box.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", "unsupported extension"),
    ],
)
def test_bad_scene_files_fail_with_one_line_naming_them(
    ckpt, files, tmp_path, capsys, name, content, match
):
    path = tmp_path / name
    path.write_text(content)
    good = files[0] / "office.ply"
    rc = main([str(ckpt), str(path), str(good), "--out-dir", str(tmp_path / "o"), "--no-png"])
    cap = capsys.readouterr()
    assert rc == 1 and match in cap.err and str(path) in cap.err
    assert "Traceback" not in cap.err
    assert "office.ply: 700 points" in cap.out  # the good scene is still done
    assert "1 of 2 failed" in cap.err


def test_missing_file_and_dropped_nonfinite(ckpt, tmp_path, capsys):
    assert main([str(ckpt), str(tmp_path / "nope.ply")]) == 1
    assert "nope.ply: no such file" in capsys.readouterr().err
    xyz, rgb, _ = scene_arrays(50)
    xyz[7] = np.nan
    write_scene_txt(tmp_path / "holes.txt", xyz, rgb)
    rc = main([str(ckpt), str(tmp_path / "holes.txt"), "--drop-nonfinite", "--no-ply", "--no-png"])
    cap = capsys.readouterr()
    assert rc == 0 and "warning: " in cap.err and "dropped 1 of 50" in cap.err
    assert "holes.txt: 49 points" in cap.out


def test_wrong_checkpoint_for_the_input_and_flags(ckpt, cls_ckpt, files, tmp_path, capsys):
    d = files[0]
    np.save(tmp_path / "room.npy", np.column_stack(files[1:]))
    # a classifier given a scene array, or scene-only flags
    assert main([str(cls_ckpt), str(tmp_path / "room.npy")]) == 1
    assert "scene segmenter checkpoint" in capsys.readouterr().err
    assert main([str(cls_ckpt), str(d / "office.ply"), "--output", "x.ply"]) == 2
    assert "only for a scene checkpoint" in capsys.readouterr().err
    # a scene checkpoint given object flags, HDF5 entries, or one output for two scenes
    for extra, match in (
        (["--category", "Chair"], "--category: not for a scene checkpoint"),
        (["--num-points", "1024"], "--num-points: not for a scene checkpoint"),
        (["--output", "a.ply", str(d / "hall.txt")], "name exactly one scene file"),
        (["--output", "a.las"], "use one of .ply .txt .xyz .npy"),
        (["--html-points", "0"], "--html-points"),
    ):
        assert main([str(ckpt), str(d / "office.ply"), *extra]) == 2, extra
        assert match in capsys.readouterr().err
    assert main([str(ckpt), str(tmp_path / "data.h5:3"), "--no-ply", "--no-png"]) == 1
    assert "HDF5 files hold objects" in capsys.readouterr().err


def test_help_shows_scene_examples():
    text = build_parser().format_help()
    assert "scenes (a checkpoint of pointea-semseg):" in text
    assert "--output" in text and "--render" in text and "--chunk-size" in text


def test_device_flag(ckpt, files, tmp_path, capsys, device):
    d = files[0]
    rc = main([str(ckpt), str(d / "office.ply"), "--device", str(device), "--no-png",
               "--output", str(tmp_path / "l.npy")])  # fmt: skip
    assert rc == 0
    ref = Predictor.from_pretrained(ckpt, device="cpu").segment_scene(files[1], files[2]).labels
    assert (np.load(tmp_path / "l.npy") == ref).mean() > 0.99
