"""Every name ``pointea-predict`` echoes is safe to print and to draw: control characters
and undecodable bytes in file or class names are escaped, and a non-UTF-8 name costs
nothing but its escapes (the PNG, the page and the rest of the batch are written)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pointea_testing import scene_arrays, write_classifier_checkpoint, write_scene_txt

from pointea.cli.predict import main
from pointea.files import safe_name
from pointea.io import write_ply
from pointea.models import create_model, save_pretrained
from pointea.outputs import is_pointea_output

POSIX_ONLY = pytest.mark.skipif(sys.platform != "linux", reason="byte file names are POSIX")
HOSTILE = "r\x1b]0;title\x07\x1b[2J\x9b\x7f\u202eoom"
CONTROLS = ("\x1b", "\x07", "\x9b", "\x7f", "\u202e")


@pytest.fixture(autouse=True)
def _numpy_renderer(monkeypatch):
    monkeypatch.setenv("POINTEA_RENDER_BACKEND", "numpy")


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("plain name.ply", "plain name.ply"),
        ("a\x1b[2Jb", "a\\x1b[2Jb"),
        ("line\nbreak\ttab\rcr", "line\\nbreak\\ttab\\rcr"),
        ("del\x7f c1\x9b nul\x00", "del\\x7f c1\\x9b nul\\x00"),
        ("rtl\u202etxt.exe \u2066x\u2069 \u2028", "rtl\\u202etxt.exe \\u2066x\\u2069 \\u2028"),
        ("caf\udce9.xyz", "caf\\xe9.xyz"),  # an undecodable byte, kept by surrogateescape
        (b"caf\xe9\x1b.xyz", "caf\\xe9\\x1b.xyz"),
        (Path("dir") / "\x1bx", "dir/\\x1bx"),
        ("café 椅子 C:\\x", "café 椅子 C:\\x"),  # printable text and backslashes kept
    ],
)
def test_safe_name(name, shown):
    assert safe_name(name) == shown
    assert safe_name(name).isprintable() or " " in shown


@pytest.fixture(scope="module")
def seg_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("pct_seg_tiny").eval()
    return save_pretrained(model, tmp_path_factory.mktemp("seg") / "model", num_points=64)


@pytest.fixture(scope="module")
def hostile_cls_ckpt(tmp_path_factory):
    """A classifier whose class names hold terminal escapes and plotly markup."""
    names = ["\x1b[2Jwipe", "\x1b]0;t\x07set", '<a href="https://x">c</a>']
    return write_classifier_checkpoint(tmp_path_factory.mktemp("cls") / "best.pt", names)


def assert_no_controls(text: str) -> None:
    for ch in CONTROLS:
        assert ch not in text, repr(text)


def test_hostile_scene_name_is_escaped_everywhere(semseg_checkpoint, tmp_path, capsys):
    xyz, rgb, labels = scene_arrays(300)
    scene = write_scene_txt(tmp_path / f"{HOSTILE}.txt", xyz, rgb, labels)
    rc = main(
        [
            str(semseg_checkpoint),
            str(scene),
            "--out-dir",
            str(tmp_path / "out"),
            "--size",
            "40",
            "30",
            "--html",
            str(tmp_path / "p.html"),
            "--html-points",
            "50",
        ]
    )
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert_no_controls(out.out + out.err)
    assert safe_name(scene.name) in out.out
    assert is_pointea_output(tmp_path / "out" / f"{HOSTILE}.png")
    page = (tmp_path / "p.html").read_text()
    assert "\x1b" not in page and "\\\\x1b" in page  # escaped, inside the figure's JSON


def test_hostile_class_names_are_escaped_in_lines(hostile_cls_ckpt, tmp_path, capsys):
    cloud = tmp_path / "c.xyz"
    np.savetxt(cloud, np.random.default_rng(0).normal(size=(100, 3)))
    assert main([str(hostile_cls_ckpt), str(cloud), "--top-k", "3"]) == 0
    out = capsys.readouterr().out
    assert_no_controls(out)
    assert "\\x1b[2Jwipe" in out and "\\x1b]0;t\\x07set" in out


def test_hostile_name_in_an_error_is_one_escaped_line(hostile_cls_ckpt, tmp_path, capsys):
    bad = tmp_path / "bad\x1b[31m\nnext.xyz"
    bad.write_text("not numbers\n")
    good = tmp_path / "good.xyz"
    np.savetxt(good, np.random.default_rng(0).normal(size=(100, 3)))
    assert main([str(hostile_cls_ckpt), str(bad), str(good)]) == 1
    out = capsys.readouterr()
    errors = [line for line in out.err.splitlines() if "error" in line]
    assert len(errors) == 1 and "bad\\x1b[31m\\nnext.xyz" in errors[0], out.err
    assert_no_controls(out.err)
    assert "good.xyz" in out.out


@POSIX_ONLY
def test_non_utf8_name_costs_nothing_and_the_batch_goes_on(seg_ckpt, tmp_path, capsys):
    """Was: ``TypeError: _layout()`` from the PNG title, and the later files never ran."""
    pts = np.random.default_rng(0).normal(size=(200, 3))
    odd = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"caf\xe9.ply"))
    write_ply(odd, pts)
    good = write_ply(tmp_path / "good.ply", pts)
    out_dir = tmp_path / "out"
    rc = main(
        [
            str(seg_ckpt),
            odd,
            str(good),
            "--category",
            "Chair",
            "--out-dir",
            str(out_dir),
            "--size",
            "40",
            "40",
        ]
    )
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "caf\\xe9.ply: Chair" in out.out and "good.ply: Chair" in out.out
    written = sorted(os.listdir(os.fsencode(out_dir)))
    assert written == sorted([b"caf\xe9.png", b"caf\xe9.ply", b"good.png", b"good.ply"])


@POSIX_ONLY
def test_non_utf8_checkpoint_path_with_html(hostile_cls_ckpt, tmp_path, capsys):
    """Was: ``UnicodeEncodeError`` writing the page titled after the checkpoint."""
    folder = os.path.join(os.fsencode(tmp_path), b"r\xe9sultats", b"checkpoints")
    os.makedirs(folder)
    ckpt = os.fsdecode(os.path.join(folder, b"best.pt"))
    Path(ckpt).write_bytes(hostile_cls_ckpt.read_bytes())
    cloud = tmp_path / "c.xyz"
    np.savetxt(cloud, np.random.default_rng(0).normal(size=(100, 3)))
    page = tmp_path / "p.html"
    rc = main([ckpt, str(cloud), "--html", str(page)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    text = page.read_text(encoding="utf-8")
    assert "<title>r\\xe9sultats (best.pt)</title>" in text
    assert_no_controls(out.out + out.err)


def test_training_and_data_commands_escape_names(tmp_path, capsys):
    from pointea.cli.data import main as data_main
    from pointea.cli.train import main as train_main

    hostile = tmp_path / "x\x1b]0;title\x07\x1b[2J"
    assert data_main(["check", str(hostile)]) != 0
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b]0;title\\x07\\x1b[2J" in err
    assert train_main(["--data-root", str(hostile), "--epochs", "1"]) != 0
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b[2J" in err
