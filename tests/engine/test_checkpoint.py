"""Checkpoint format, atomic writes, RNG capture and the mismatch errors."""

from __future__ import annotations

import errno
import random

import numpy as np
import pytest
import torch

import pointea.files as files
import pointea.serialization as serialization
from pointea.engine.checkpoint import (
    CHECKPOINT_FORMAT,
    capture_rng_state,
    check_checkpoint_matches,
    load_checkpoint,
    load_model_state,
    restore_rng_state,
    save_checkpoint,
    unwrap_model,
)
from pointea.errors import CheckpointError, TrainingError


def _ckpt(**extra):
    model = torch.nn.Linear(3, 2)
    base = {
        "format": CHECKPOINT_FORMAT,
        "format_version": 1,
        "task": "classification",
        "model_name": "pct_cls_tiny",
        "model_config": {"attention": "external", "num_classes": 2},
        "model": model.state_dict(),
        "epoch": 3,
        "config": {"task": "modelnet40"},
        "rng": capture_rng_state(),
    }
    base.update(extra)
    return base


def test_roundtrip_is_plain_values(tmp_path):
    path = save_checkpoint(_ckpt(), tmp_path / "c" / "last.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["epoch"] == 3 and raw["model_name"] == "pct_cls_tiny"
    assert load_checkpoint(path)["task"] == "classification"  # format 1 as written
    assert not list(path.parent.glob(".*.tmp"))  # no temporary left behind


def test_rng_state_roundtrip_restores_every_generator():
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    state = capture_rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    restore_rng_state(state)
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], got[0])
    assert np.array_equal(expected[1], got[1]) and expected[2] == got[2]


def test_not_a_pointea_checkpoint(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {}, "epoch": 1}, path)
    with pytest.raises(CheckpointError, match="not a pointea training checkpoint"):
        load_checkpoint(path)
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="holds a list"):
        load_checkpoint(path)
    save_checkpoint(_ckpt(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # what a non-atomic writer leaves when killed
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_newer_format_and_missing_fields(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(_ckpt(format_version=9), path)
    with pytest.raises(CheckpointError, match="format_version 9"):
        load_checkpoint(path)
    ck = _ckpt()
    del ck["model"], ck["config"]
    save_checkpoint(ck, path)
    with pytest.raises(CheckpointError, match=r"lacks the fields \['model', 'config'\]"):
        load_checkpoint(path)


def test_wrong_task_and_architecture_are_listed():
    ck = _ckpt()
    with pytest.raises(CheckpointError) as exc:
        check_checkpoint_matches(
            ck,
            "best.pt",
            task="shapenetpart",
            model_name="pct_seg_tiny",
            model_config={"attention": "self", "num_classes": 2, "memory_units": 64},
        )
    msg = str(exc.value)
    assert "task: checkpoint 'modelnet40', expected 'shapenetpart'" in msg
    assert "model: checkpoint 'pct_cls_tiny', expected 'pct_seg_tiny'" in msg
    assert "model_config.attention: checkpoint 'external', expected 'self'" in msg
    assert "model_config.memory_units: checkpoint '<absent>', expected 64" in msg
    assert "num_classes" not in msg  # equal fields are not listed
    check_checkpoint_matches(ck, "best.pt", task="modelnet40", model_name="pct_cls_tiny")


def test_weights_that_do_not_fit_are_listed():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    state = {"0.weight": torch.zeros(5, 3), "0.bias": torch.zeros(4), "extra": torch.zeros(1)}
    with pytest.raises(CheckpointError) as exc:
        load_model_state(model, state, "x.pt")
    msg = str(exc.value)
    assert "missing 2" in msg and "1.weight" in msg
    assert "unexpected 1" in msg and "extra" in msg
    assert "0.weight (5, 3) vs (4, 3)" in msg


def test_unwrap_model_removes_wrappers():
    inner = torch.nn.Linear(2, 2)
    assert unwrap_model(torch.nn.DataParallel(inner)) is inner


def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(_ckpt(epoch=1), path)

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"partial bytes")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(serialization.torch, "save", full_disk)
    with pytest.raises(TrainingError) as exc:
        save_checkpoint(_ckpt(epoch=2), path)
    msg = str(exc.value)
    assert str(path) in msg and "No space left on device" in msg
    assert "previous checkpoint there is intact" in msg
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert not list(tmp_path.glob(".*.tmp"))


def test_unwritable_folder_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(_ckpt(epoch=1), path)

    def read_only(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path))

    monkeypatch.setattr(files.tempfile, "mkstemp", read_only)  # atomic_write lives in files
    with pytest.raises(TrainingError, match="Permission denied"):
        save_checkpoint(_ckpt(epoch=2), path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1


@pytest.mark.parametrize(
    ("fields", "task", "kind"),
    [
        # format 1: the kind under "task", the recipe only in the saved config
        ({"format_version": 1, "task": "classification"}, "modelnet40", "classification"),
        ({"format_version": 1, "task": "semseg", "config": {"task": "s3dis"}}, "s3dis", "semseg"),
        # format 1 without a config task: the first task of its kind
        (
            {"format_version": 1, "task": "segmentation", "config": {}},
            "shapenetpart",
            "segmentation",
        ),
        # format 2: both fields
        ({"format_version": 2, "task": "s3dis", "kind": "semseg"}, "s3dis", "semseg"),
    ],
)
def test_task_and_kind_read_from_both_formats(fields, task, kind):
    from pointea.engine.checkpoint import checkpoint_kind, checkpoint_task

    ck = _ckpt(**fields)
    assert (checkpoint_task(ck), checkpoint_kind(ck)) == (task, kind)


def test_assembled_checkpoint_names_task_and_kind(tmp_path):
    from pointea.engine.checkpoint import CHECKPOINT_VERSION, assemble_checkpoint

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    ck = assemble_checkpoint(
        task="modelnet40",
        kind="classification",
        model_name="pct_cls_tiny",
        model_config={},
        model=model,
        optimizer=opt,
        scheduler=sched,
        scaler=None,
        epoch=1,
        global_step=1,
        config={"task": "modelnet40"},
        class_names=["a", "b"],
        best_metric=0.5,
        best_epoch=1,
        metrics={},
    )
    assert (ck["task"], ck["kind"], ck["format_version"]) == (
        "modelnet40",
        "classification",
        CHECKPOINT_VERSION,
    )
    assert load_checkpoint(save_checkpoint(ck, tmp_path / "x.pt"))["kind"] == "classification"


def test_a_checkpoint_of_an_unknown_task_is_refused_on_resume():
    from pointea.engine.checkpoint import checkpoint_kind, checkpoint_task

    ck = _ckpt(task="modelnet41", config={})
    assert checkpoint_task(ck) is None and checkpoint_kind(ck) is None
    with pytest.raises(CheckpointError, match="task: checkpoint None, expected 'modelnet40'"):
        check_checkpoint_matches(ck, "last.pt", task="modelnet40")
