"""pointea-train / pointea-seg / pointea-eval command lines: help, bad flags, folders."""

from __future__ import annotations

import fcntl
import os

import pytest

from pointea.cli import evaluate as eval_cli
from pointea.cli.train import main, main_seg

TINY = ["--model", "pct_cls_tiny", "--batch-size", "4", "--num-points", "64", "--no-progress",
        "--epochs", "1"]


@pytest.mark.parametrize("entry", [main, main_seg, eval_cli.main])
def test_help_documents_every_shared_flag(entry, capsys):
    with pytest.raises(SystemExit) as exc:
        entry(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    if entry is eval_cli.main:
        flags = ["--split", "--votes", "--data-root", "--device", "--batch-size", "--output"]
    else:
        flags = ["--data-root", "--download", "--epochs", "--batch-size", "--num-points",
                 "--attention", "--memory-units", "--lr", "--optimizer", "--seed", "--device",
                 "--workers", "--output-dir", "--resume", "--synthetic", "--amp", "--bf16",
                 "--overwrite", "--skip-nonfinite", "torchrun", "--rdzv_endpoint"]
    for flag in flags:
        assert flag in text, flag


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--attention", "self", "--memory-units", "32"], "only applies to external"),
        (["--amp", "--bf16"], "exclude each other"),
        (["--resume", "--overwrite", "--output-dir", "x"], "choose one"),
        (["--model", "pct_seg_tiny"], "not a classification model"),
        (["--synthetic", "--download"], "drop --download"),
        (["--epochs", "0"], "epochs must be >= 1"),
        (["--lr", "-1"], "lr must be a positive number"),
        (["--optimizer", "rmsprop"], "invalid choice"),
        (["--resume"], "needs the run folder"),
        (["--categories", "Chair"], "only applies to part segmentation"),
    ],
)
def test_bad_flag_combinations_get_a_clear_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_amp_on_cpu_is_refused(cls_root, tmp_path, capsys):
    rc = main(["--data-root", str(cls_root), *TINY, "--amp", "--device", "cpu",
               "--output-dir", str(tmp_path / "r")])
    assert rc == 2
    assert "--amp" in capsys.readouterr().err


def test_missing_dataset_names_download_and_manual_route(tmp_path, capsys):
    rc = main(["--data-root", str(tmp_path / "nothing"), *TINY,
               "--output-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "--download" in err and "modelnet40_ply_hdf5_2048" in err
    assert "Traceback" not in err


@pytest.mark.e2e
def test_non_empty_folder_needs_resume_or_overwrite(cls_root, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    rc = main(["--data-root", str(cls_root), *TINY, "--output-dir", str(out)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "not empty" in err and "--overwrite" in err and "--resume" in err
    assert not (out / "config.json").exists()
    rc = main(["--data-root", str(cls_root), *TINY, "--output-dir", str(out), "--overwrite"])
    assert rc == 0
    assert (out / "test_metrics.json").exists()
    assert (out / "notes.txt").read_text() == "mine"  # only the run's own files are replaced


def test_folder_locked_by_another_run_is_refused(cls_root, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    fd = os.open(out / ".pointea.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running run holds
        os.write(fd, b"pid 4242 on elsewhere\n")
        rc = main(["--data-root", str(cls_root), *TINY, "--output-dir", str(out)])
    finally:
        os.close(fd)
    assert rc == 1
    err = capsys.readouterr().err
    assert "in use by another run" in err and "pid 4242" in err
    assert sorted(p.name for p in out.iterdir()) == [".pointea.lock"]  # nothing written


def test_resume_with_nothing_to_resume(tmp_path, capsys):
    rc = main(["--output-dir", str(tmp_path / "empty"), "--resume", "--no-progress"])
    assert rc == 2
    assert "nothing to resume" in capsys.readouterr().err


@pytest.mark.e2e
def test_resume_refuses_changed_settings(cls_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--data-root", str(cls_root), *TINY, "--output-dir", str(out)]) == 0
    rc = main(["--output-dir", str(out), "--resume", "--lr", "0.5", "--attention", "self",
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "lr: run has 0.01, given 0.5" in err and "attention" in err


@pytest.mark.e2e
def test_adam_is_allowed_with_a_warning(cls_root, tmp_path, capsys):
    rc = main(["--data-root", str(cls_root), *TINY, "--optimizer", "adam",
               "--output-dir", str(tmp_path / "r")])
    assert rc == 0
    assert "Adam at lr 0.001 is reported to diverge for PCT" in capsys.readouterr().err
    config = (tmp_path / "r" / "config.json").read_text()
    assert '"optimizer": "adam"' in config and '"lr": 0.001' in config
