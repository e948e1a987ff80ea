"""No output of ``pointea-predict`` replaces a file the user owns: inputs and checkpoints
never, other existing files only with ``--overwrite``; pointea's own earlier outputs are
recognised by their marker, so a command can be run again. Also: flags that do not apply
to the checkpoint are refused, and Ctrl-C is one line."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
from pointea_testing import scene_arrays, write_classifier_checkpoint, write_scene_txt

from pointea.cli.predict import main
from pointea.errors import OutputExistsError, PointeaError
from pointea.io import write_ply
from pointea.models import create_model, save_pretrained
from pointea.outputs import check_output, is_pointea_output


@pytest.fixture(autouse=True)
def _numpy_renderer(monkeypatch):
    monkeypatch.setenv("POINTEA_RENDER_BACKEND", "numpy")


@pytest.fixture(scope="module")
def scene_ckpt(semseg_checkpoint):
    return semseg_checkpoint


@pytest.fixture(scope="module")
def cls_ckpt(tmp_path_factory):
    return write_classifier_checkpoint(tmp_path_factory.mktemp("cls") / "best.pt")


@pytest.fixture(scope="module")
def seg_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("pct_seg_tiny").eval()
    return save_pretrained(model, tmp_path_factory.mktemp("seg") / "model", num_points=64)


@pytest.fixture
def room(tmp_path):
    """A scene with labels, and a copy of its bytes to compare with."""
    xyz, rgb, labels = scene_arrays(300)
    path = write_scene_txt(tmp_path / "room.txt", xyz, rgb, labels)
    return path, path.read_bytes()


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("pointea-predict: error: "), err
    return lines[0]


# --------------------------------------------------------------------------- scenes
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_output_onto_the_input_scene_is_refused(scene_ckpt, room, capsys, overwrite):
    path, before = room
    rc = main([str(scene_ckpt), str(path), "--output", str(path), "--no-png", *overwrite])
    line = one_error_line(capsys.readouterr().err)
    assert rc == 2
    assert "--output" in line and "room.txt" in line and "is an input" in line
    assert path.read_bytes() == before


@pytest.mark.parametrize("flag", ["--render", "--html"])
def test_render_or_html_onto_the_checkpoint_or_input_is_refused(
    scene_ckpt, room, tmp_path, capsys, flag
):
    path, before = room
    ckpt = tmp_path / "ck.pt"
    shutil.copyfile(scene_ckpt, ckpt)
    ck_bytes = ckpt.read_bytes()
    for target, data in ((ckpt, ck_bytes), (path, before)):
        rc = main([str(ckpt), str(path), flag, str(target), "--no-ply", "--overwrite"])
        line = one_error_line(capsys.readouterr().err)
        assert rc == 2 and flag in line and target.name in line and "--overwrite" in line
        assert target.read_bytes() == data


def test_out_dir_onto_the_inputs_own_folder(scene_ckpt, tmp_path, capsys):
    """scan.ply would be replaced by the class-coloured PLY: that scene fails with one
    line and stays; the next scene is still written."""
    xyz, rgb, labels = scene_arrays(300)
    scan = write_ply(tmp_path / "scan.ply", xyz, colors=rgb)
    before = scan.read_bytes()
    write_scene_txt(tmp_path / "zroom.txt", xyz, rgb, labels)
    rc = main(
        [
            str(scene_ckpt),
            str(scan),
            str(tmp_path / "zroom.txt"),
            "--out-dir",
            str(tmp_path),
            "--size",
            "40",
            "30",
        ]
    )
    out = capsys.readouterr()
    assert rc == 1
    errors = [line for line in out.err.splitlines() if "error" in line]
    assert len(errors) == 1 and "scan.ply" in errors[0] and "is an input" in errors[0]
    assert scan.read_bytes() == before
    assert not (tmp_path / "scan.png").exists()  # the refused scene writes nothing
    assert is_pointea_output(tmp_path / "zroom.ply") and is_pointea_output(tmp_path / "zroom.png")


def test_foreign_file_needs_overwrite_and_own_outputs_do_not(scene_ckpt, room, tmp_path, capsys):
    path, _ = room
    out, png, page = tmp_path / "labels.txt", tmp_path / "view.png", tmp_path / "v.html"
    for target in (out, png, page):
        target.write_text("mine")
        argv = [str(scene_ckpt), str(path), "--no-ply", "--no-png", "--html-points", "50"]
        flag = {out: "--output", png: "--render", page: "--html"}[target]
        rc = main([*argv, flag, str(target)])
        line = one_error_line(capsys.readouterr().err)
        assert rc == 2 and "not written by pointea" in line and "pass --overwrite" in line
        assert target.read_text() == "mine"
    argv = [
        str(scene_ckpt),
        str(path),
        "--output",
        str(out),
        "--render",
        str(png),
        "--html",
        str(page),
        "--size",
        "40",
        "30",
        "--html-points",
        "50",
    ]
    assert main([*argv, "--overwrite"]) == 0, capsys.readouterr().err
    assert all(is_pointea_output(p) for p in (out, png, page))
    table = np.loadtxt(out)
    assert table.shape == (300, 7)
    # the same command again, without --overwrite: pointea's own outputs are replaced
    for p in (out, png, page):
        os.utime(p, ns=(0, 0))
    assert main(argv) == 0, capsys.readouterr().err
    assert all(p.stat().st_mtime_ns != 0 for p in (out, png, page))


def test_npy_labels_carry_no_marker_so_an_existing_one_needs_overwrite(
    scene_ckpt, room, tmp_path, capsys
):
    path, _ = room
    out = tmp_path / "labels.npy"
    argv = [str(scene_ckpt), str(path), "--output", str(out), "--no-png"]
    assert main(argv) == 0
    first = out.read_bytes()
    assert main(argv) == 2
    assert "--overwrite" in one_error_line(capsys.readouterr().err)
    assert out.read_bytes() == first
    assert main([*argv, "--overwrite"]) == 0


def test_two_flags_naming_one_file_are_refused(scene_ckpt, room, tmp_path, capsys):
    path, _ = room
    same = tmp_path / "same.png"
    rc = main([str(scene_ckpt), str(path), "--render", str(same), "--html", str(same)])
    line = one_error_line(capsys.readouterr().err)
    assert rc == 2 and "--render and --html name the same file" in line
    assert not same.exists()


# --------------------------------------------------------------------------- objects
def test_part_segmentation_out_dir_onto_its_input(seg_ckpt, tmp_path, capsys):
    pts = np.random.default_rng(0).normal(size=(200, 3))
    chair = write_ply(tmp_path / "chair.ply", pts)
    before = chair.read_bytes()
    rc = main(
        [
            str(seg_ckpt),
            str(chair),
            "--category",
            "Chair",
            "--out-dir",
            str(tmp_path),
            "--size",
            "40",
            "40",
        ]
    )
    line = one_error_line(capsys.readouterr().err.replace("1 of 1 failed", ""))
    assert rc == 1 and "chair.ply" in line and "is an input" in line
    assert chair.read_bytes() == before
    # into another folder, twice: the second run replaces pointea's own files
    out = tmp_path / "pred"
    argv = [
        str(seg_ckpt),
        str(chair),
        "--category",
        "Chair",
        "--out-dir",
        str(out),
        "--size",
        "40",
        "40",
    ]
    assert main(argv) == 0 and main(argv) == 0
    (out / "chair.png").write_bytes(b"\x89PNG\r\n\x1a\nnot pointea's")
    assert main(argv) == 1
    assert "pass --overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0 and is_pointea_output(out / "chair.png")


def test_render_grid_onto_the_checkpoint_is_refused(cls_ckpt, tmp_path, capsys):
    ckpt = tmp_path / "ck.pt"
    shutil.copyfile(cls_ckpt, ckpt)
    before = ckpt.read_bytes()
    rc = main([str(ckpt), "--render-grid", str(ckpt), "--dataset-root", str(tmp_path)])
    line = one_error_line(capsys.readouterr().err)
    assert rc == 2 and "--render-grid" in line and "is an input" in line
    assert ckpt.read_bytes() == before


# --------------------------------------------------------------------------- library
def test_check_output_rules(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("data")
    assert check_output(tmp_path / "new.txt", inputs=[src]) == tmp_path / "new.txt"
    link = tmp_path / "link.txt"
    link.symlink_to(src)
    hard = tmp_path / "hard.txt"
    os.link(src, hard)
    for alias in (src, link, hard, tmp_path / "." / "in.txt"):
        with pytest.raises(OutputExistsError, match="is an input") as info:
            check_output(alias, inputs=[src], overwrite=True)
        assert isinstance(info.value, PointeaError) and isinstance(info.value, FileExistsError)
    # a folder input stands for the files in it (a save_pretrained checkpoint)
    with pytest.raises(OutputExistsError, match="is an input"):
        check_output(src, inputs=[tmp_path], overwrite=True)
    with pytest.raises(OutputExistsError, match="is a folder"):
        check_output(tmp_path, overwrite=True)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        check_output(hard)  # not an input here, but not pointea's either
    assert check_output(hard, overwrite=True) == hard


def test_markers_of_pointea_outputs(tmp_path):
    from matplotlib.image import imsave

    from pointea import visualization as viz

    img = np.zeros((8, 8, 3), np.uint8)
    assert is_pointea_output(viz.save_png(tmp_path / "a.png", img))
    imsave(tmp_path / "b.png", img)  # matplotlib's own Software chunk
    assert not is_pointea_output(tmp_path / "b.png")
    page = viz.write_html(tmp_path / "a.html", viz.cloud_figure(np.zeros((3, 3)) + [0, 1, 2]))
    assert is_pointea_output(page)
    (tmp_path / "b.html").write_text("<html><body>mine</body></html>")
    assert not is_pointea_output(tmp_path / "b.html")
    assert is_pointea_output(write_ply(tmp_path / "a.ply", np.zeros((2, 3))))
    (tmp_path / "b.ply").write_text("ply\nformat ascii 1.0\nelement vertex 0\nend_header\n")
    assert not is_pointea_output(tmp_path / "b.ply")
    assert not is_pointea_output(tmp_path / "missing.ply")


# --------------------------------------------------------------------------- flags, Ctrl-C
@pytest.mark.parametrize(
    ("which", "extra", "phrase"),
    [
        ("scene", ["--top-k", "3"], "--top-k: only for a classifier"),
        ("scene", ["--no-estimate-normals"], "--no-estimate-normals: not for a scene"),
        ("cls", ["--html-points", "100"], "--html-points: only for a scene checkpoint"),
        ("seg", ["--top-k", "2", "--category", "Chair"], "--top-k: only for a classifier"),
    ],
)
def test_flags_that_do_not_apply_are_refused(
    scene_ckpt, cls_ckpt, seg_ckpt, room, tmp_path, capsys, which, extra, phrase
):
    ckpt = {"scene": scene_ckpt, "cls": cls_ckpt, "seg": seg_ckpt}[which]
    rc = main([str(ckpt), str(room[0]), "--out-dir", str(tmp_path / "o"), *extra])
    assert rc == 2 and phrase in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "extra",
    [
        ["--split", "train"],
        ["--num-shapes", "3"],
        ["--dataset-root", "data"],
        ["--dataset-format", "hdf5"],
    ],
)
def test_grid_flags_without_render_grid_are_refused(cls_ckpt, room, capsys, extra):
    rc = main([str(cls_ckpt), str(room[0]), *extra])
    line = one_error_line(capsys.readouterr().err)
    assert rc == 2 and f"{extra[0]}: only with --render-grid" in line


@pytest.mark.parametrize("task", ["scene", "cls"])
def test_ctrl_c_is_one_line_and_exit_130(
    scene_ckpt, cls_ckpt, room, tmp_path, capsys, monkeypatch, task
):
    from pointea.inference import ScenePredictor, ShapePredictor

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    if task == "scene":
        monkeypatch.setattr(ScenePredictor, "predict_scene_file", interrupted)
    else:
        monkeypatch.setattr(ShapePredictor, "predict_file", interrupted)
    ckpt = scene_ckpt if task == "scene" else cls_ckpt
    rc = main([str(ckpt), str(room[0]), "--out-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 130
    assert [line for line in err.splitlines() if line.strip()] == ["pointea-predict: interrupted"]


# --------------------------------------------------------------------------- pointea-convert
def test_convert_keeps_a_foreign_folder_and_replaces_its_own(tmp_path, capsys):
    from pointea_testing import fake_pct_state_dict

    from pointea.cli.convert import main as convert

    t7 = tmp_path / "model.t7"
    torch.save(fake_pct_state_dict(), t7)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("my notes")
    assert convert(["pct-pytorch", str(t7), str(mine)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "README.md" in err and "--overwrite" in err
    assert sorted(p.name for p in mine.iterdir()) == ["README.md"]
    assert (mine / "README.md").read_text() == "my notes"
    assert convert(["pct-pytorch", str(t7), str(mine), "--overwrite"]) == 0
    assert convert(["pct-pytorch", str(t7), str(mine)]) == 0  # its own folder: replaced
    # the checkpoint itself is never replaced, even with --overwrite
    (tmp_path / "ck").mkdir()
    inside = tmp_path / "ck" / "model.safetensors"
    inside.write_bytes(t7.read_bytes())
    assert convert(["pct-pytorch", str(inside), str(tmp_path / "ck"), "--overwrite"]) == 2
    assert "is an input" in capsys.readouterr().err
    assert inside.read_bytes() == t7.read_bytes()


# --------------------------------------------------------------------------- pointea-eval
def test_eval_output_never_replaces_the_checkpoint_or_a_foreign_file(tmp_path, capsys):
    """Checked before anything is evaluated (so no dataset is needed here)."""
    import json

    from pointea.cli.evaluate import main as evaluate
    from pointea.outputs import JSON_MARKER

    ckpt = tmp_path / "ck.pt"
    ckpt.write_bytes(b"weights")
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": 1}')
    for target, extra, phrase in ((ckpt, ["--overwrite"], "is an input"),
                                  (notes, [], "pass --overwrite")):  # fmt: skip
        assert evaluate([str(ckpt), "--output", str(target), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and phrase in err and target.name in err
    assert ckpt.read_bytes() == b"weights" and notes.read_text() == '{"mine": 1}'
    report = tmp_path / "report.json"
    report.write_text(json.dumps({**JSON_MARKER, "task": "modelnet40"}, indent=2))
    assert is_pointea_output(report) and not is_pointea_output(notes)
    assert check_output(report) == report  # an earlier report is replaced without a flag


def test_synthetic_rooms_written_with_other_arguments_name_the_cli_flag(tmp_path):
    from pointea.datasets.synthetic.rooms import write_rooms

    write_rooms(tmp_path, rooms_per_area=1, areas=(1,), density=20.0)
    with pytest.raises(PointeaError, match="overwrite=True") as info:
        write_rooms(tmp_path, rooms_per_area=1, areas=(1,), density=30.0)
    assert "--data-root" in str(info.value)


@pytest.mark.slow
def test_sigint_in_a_real_process_is_one_line(scene_ckpt, tmp_path):
    """A first scene is reported, then SIGINT arrives while a large one is segmented."""
    import signal
    import subprocess
    import sys
    import time

    xyz, rgb, labels = scene_arrays(200)
    first = write_scene_txt(tmp_path / "a.txt", xyz, rgb, labels)
    xyz, rgb, labels = scene_arrays(60_000, seed=1)
    second = write_scene_txt(tmp_path / "b.txt", xyz, rgb, labels)
    cmd = [sys.executable, "-m", "pointea.cli.predict", str(scene_ckpt), str(first),
           str(second), "--out-dir", str(tmp_path / "o"), "--chunk-size", "64", "--no-png",
           "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the first scene's summary: the second is running
    assert b"a.txt" in line, line
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err.decode(errors="replace")[-2000:]
    lines = [x for x in err.decode().splitlines() if x.strip()]
    assert lines == ["pointea-predict: interrupted"]
    assert not (tmp_path / "o" / "b.ply").exists()


def test_eval_error_naming_a_hostile_path_is_escaped(tmp_path, capsys):
    from pointea.cli.evaluate import main as evaluate

    bad = tmp_path / "ck\x1b[2J.pt"
    bad.write_bytes(b"not a checkpoint")
    assert evaluate([str(bad)]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "ck\\x1b[2J.pt" in err
