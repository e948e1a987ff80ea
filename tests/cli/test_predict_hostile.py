"""Hostile inputs to pointea-predict / pointea-convert / model loading: one line, never a
traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pointea.cli.predict import main
from pointea.errors import CheckpointError
from pointea.models import create_model, load_model
from pointea.models.hub import save_pretrained

NUM_POINTS = 64


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("pct_cls_tiny", num_classes=3).eval()
    return save_pretrained(model, tmp_path_factory.mktemp("m") / "model",
                           class_names=["a", "b", "c"], num_points=NUM_POINTS)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    path = tmp_path_factory.mktemp("in") / "cloud.xyz"
    pts = np.random.default_rng(0).normal(size=(100, 3))
    path.write_text("\n".join(" ".join(f"{v:.5f}" for v in p) for p in pts) + "\n")
    return path


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_a_gpu_is_one_line(folder, cloud, capsys):
    rc = main([str(folder), str(cloud), "--device", "cuda"])
    line = one_error_line(capsys.readouterr().err)
    assert rc == 2 and "CUDA is not available" in line


def tampered(folder: Path, tmp_path: Path, **changes) -> Path:
    """A copy of the model folder with config.json fields replaced (dotted keys nest)."""
    import shutil

    out = tmp_path / "tampered"
    shutil.copytree(folder, out)
    cfg = json.loads((out / "config.json").read_text())
    for key, value in changes.items():
        if key.startswith("model_config."):
            cfg["model_config"][key.split(".", 1)[1]] = value
        else:
            cfg[key] = value
    (out / "config.json").write_text(json.dumps(cfg))
    return out


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"model_config.num_classes": -1}, "model_config.num_classes"),
        ({"model_config.num_classes": 10**12}, "model_config.num_classes"),
        ({"model_config.fuse_channels": 10**9}, "model_config.fuse_channels"),
        ({"num_points": "abc"}, "num_points"),
        ({"num_points": 0}, "num_points"),
        ({"class_names": "abc"}, "class_names"),
        ({"class_names": ["a", 2, "c"]}, "class_names"),
        ({"class_names": ["a", "b"]}, "class_names"),  # two names for three classes
        ({"model_config.stage_channels": [128, "x"]}, "model_config.stage_channels"),
    ],
)
def test_tampered_config_is_refused_before_building(folder, cloud, tmp_path, capsys, changes,
                                                    field, monkeypatch):
    import pointea.models.hub as hub

    bad = tampered(folder, tmp_path, **changes)

    def never(*a, **k):
        raise AssertionError("the model must not be built from an invalid config")

    monkeypatch.setattr(hub, "create_model", never)
    with pytest.raises(CheckpointError) as info:
        load_model(bad)
    msg = str(info.value)
    assert "config.json" in msg and field in msg
    rc = main([str(bad), str(cloud)])
    line = one_error_line(capsys.readouterr().err)
    assert rc == 2 and field in line and "config.json" in line


def test_huge_render_size_is_refused_by_the_parser(folder, cloud, capsys):
    with pytest.raises(SystemExit) as info:
        main([str(folder), str(cloud), "--size", "20000", "20000"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--size" in err and "8192" in err


@pytest.mark.e2e
def test_files_may_follow_options(folder, cloud, capsys):
    rc = main([str(folder), "--json", "--top-k", "2", str(cloud)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert len(json.loads(out.out)["results"][0]["top_k"]) == 2


@pytest.mark.e2e
@pytest.mark.skipif(sys.platform != "linux", reason="byte file names are a POSIX matter")
def test_non_utf8_file_name_with_a_strict_utf8_stdout(folder, cloud, tmp_path):
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9.xyz")
    with open(odd, "wb") as f:
        f.write(cloud.read_bytes())
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    for extra in ([], ["--json"]):
        out = subprocess.run(
            [sys.executable, "-m", "pointea.cli.predict", str(folder), os.fsdecode(odd), *extra],
            capture_output=True, env=env, timeout=300,
        )
        assert out.returncode == 0, out.stderr.decode(errors="replace")[-2000:]
        shown = (b"caf\\xe9.xyz", b"caf\\udce9.xyz", b"caf\\\\udce9.xyz")  # lines; JSON
        assert any(name in out.stdout for name in shown)


def test_convert_onto_an_existing_file_or_an_unwritable_folder(tmp_path, capsys, monkeypatch):
    from pointea_testing import fake_pct_state_dict

    from pointea.cli.convert import main as convert

    t7 = tmp_path / "model.t7"
    torch.save(fake_pct_state_dict(), t7)
    existing = tmp_path / "taken.txt"
    existing.write_text("mine")
    assert convert(["pct-pytorch", str(t7), str(existing)]) == 2
    assert "not a folder" in one_error_line(capsys.readouterr().err)
    assert existing.read_text() == "mine"
    # a folder that cannot be created (its parent is a file)
    assert convert(["pct-pytorch", str(t7), str(existing / "out")]) == 2
    assert "cannot write" in one_error_line(capsys.readouterr().err)
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() == 0:  # root ignores the mode bits: refuse as the kernel would for others
        mkdir = Path.mkdir

        def denied(self, *args, **kwargs):
            if self.parent == locked:
                raise PermissionError(13, "Permission denied", str(self))
            return mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", denied)
    locked.chmod(0o500)
    try:
        assert convert(["pct-pytorch", str(t7), str(locked / "out")]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert "cannot write" in line and "ermission denied" in line
    finally:
        locked.chmod(0o700)


def test_unreadable_checkpoint_is_not_called_corrupt(folder, tmp_path, monkeypatch):
    import builtins
    import errno

    from pointea.serialization import safe_torch_load

    path = tmp_path / "best.pt"
    torch.save({"a": torch.zeros(2)}, path)
    real_open = builtins.open

    def denied(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", denied)
    with pytest.raises(CheckpointError) as info:
        safe_torch_load(path)
    assert "Permission denied" in str(info.value) and "corrupt" not in str(info.value)


def test_refused_global_is_recognised_in_either_wording(tmp_path, monkeypatch):
    import pickle

    from pointea import serialization

    path = tmp_path / "evil.pt"
    torch.save({"a": torch.zeros(1)}, path)  # a real zip file
    for wording in ("Weights only load failed. Unsupported global: GLOBAL os.system",
                    "Weights only load failed. unsupported GLOBAL os.system was refused"):
        def refuse(*a, _w=wording, **k):
            raise pickle.UnpicklingError(_w)

        monkeypatch.setattr(serialization.torch, "load", refuse)
        with pytest.raises(CheckpointError, match="refused to load"):
            serialization.safe_torch_load(path)


def test_tampered_training_checkpoint_is_refused_before_building(tmp_path, monkeypatch):
    import pointea.models.hub as hub
    from pointea.serialization import atomic_torch_save

    model = create_model("pct_cls_tiny", num_classes=3).eval()
    base = {"format": "pointea-checkpoint", "format_version": 1, "task": "classification",
            "model_name": model.name, "model": model.state_dict(), "epoch": 1,
            "config": {"num_points": 64}, "class_names": ["a", "b", "c"], "metrics": {}}
    monkeypatch.setattr(hub, "create_model", lambda *a, **k: pytest.fail("built"))
    for field, change in [
        ("model_config.num_classes", {"model_config": {**model.hparams, "num_classes": 10**12}}),
        ("class_names", {"class_names": ["a", "b"]}),
        ("num_points", {"config": {"num_points": "abc"}}),
    ]:
        path = tmp_path / "best.pt"
        atomic_torch_save({**base, "model_config": model.hparams, **change}, path)
        with pytest.raises(CheckpointError, match=field.replace(".", r"\.")):
            load_model(path)
