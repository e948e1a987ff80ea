"""The engine's public surface: flags derived from TrainConfig, hooks, model options."""

from __future__ import annotations

import dataclasses

import pytest

from pointea.cli.train import build_parser, main, parse_config
from pointea.datasets import ensure_synthetic
from pointea.engine import Callback, TaskData, TrainConfig, build_model


def _flags(parser):
    return {a.dest: a for a in parser._actions if a.option_strings}


@pytest.mark.parametrize("task", ["modelnet40", "shapenetpart"])
def test_every_setting_has_a_flag_with_help(task):
    flags = _flags(build_parser(task))
    for f in dataclasses.fields(TrainConfig):
        assert f.name in flags, f.name
        assert flags[f.name].help and flags[f.name].help.strip(), f.name


def test_flags_reach_the_config_and_name_what_was_given():
    cfg, args, explicit = parse_config(
        ["--heads", "2", "--tie-memories", "--no-augment", "--lr", "0.05", "--normals",
         "--categories", "Mug", "Chair", "--output-dir", "x"],
        "shapenetpart",
    )
    assert cfg.task == "shapenetpart"
    assert (cfg.heads, cfg.tie_memories, cfg.augment, cfg.lr) == (2, True, False, 0.05)
    assert cfg.use_normals is True and cfg.categories == ["Mug", "Chair"]
    assert explicit == {"heads", "tie_memories", "augment", "lr", "use_normals", "categories",
                        "output_dir"}
    cfg, _, explicit = parse_config(["--output-dir", "y"])
    assert cfg.heads is None and cfg.tie_memories is None and explicit == {"output_dir"}
    # untouched settings keep the dataclass defaults: one source of truth
    for f in dataclasses.fields(TrainConfig):
        if f.name not in ("output_dir",):
            assert getattr(cfg, f.name) == f.default, f.name


def test_heads_and_tie_memories_reach_the_model():
    cfg = TrainConfig(model="pct_cls_tiny", heads=2, tie_memories=True).resolved()
    data = TaskData([], [], [], 3, ["a", "b", "c"])
    model = build_model(cfg, data)
    assert model.hparams["heads"] == 2 and model.hparams["tie_memories"] is True
    with pytest.raises(SystemExit):
        parse_config(["--attention", "self", "--heads", "2"])


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_train_start(self, state):
        self.calls.append(("start", state.epoch))

    def on_step_end(self, state, loss):
        self.calls.append(("step", state.epoch, state.step))

    def on_checkpoint(self, state, paths):
        self.calls.append(("checkpoint", state.epoch, sorted(p.name for p in paths)))

    def on_epoch_end(self, state, record):
        self.calls.append(("epoch", record["epoch"], len(state.history)))

    def on_train_end(self, state, test_record):
        self.calls.append(("end", test_record["epoch"]))


@pytest.mark.e2e
def test_hooks_are_called_in_order(tmp_path):
    data = ensure_synthetic("modelnet40", root=tmp_path / "d", num_classes=3,
                            train_per_class=3, test_per_class=1, points=64)
    rec = Recorder()
    argv = ["--data-root", str(data), "--model", "pct_cls_tiny", "--batch-size", "4",
            "--num-points", "32", "--no-progress", "--epochs", "2", "--device", "cpu",
            "--output-dir", str(tmp_path / "run")]
    assert main(argv, callbacks=[rec]) == 0
    steps = [c for c in rec.calls if c[0] == "step"]
    assert rec.calls[0] == ("start", 0)
    assert steps and {c[1] for c in steps} == {1, 2}
    names = [c[0] for c in rec.calls]
    assert names.index("checkpoint") < names.index("epoch") and names[-1] == "end"
    assert ("epoch", 1, 1) in rec.calls and ("epoch", 2, 2) in rec.calls
    assert ("checkpoint", 1, ["best.pt", "last.pt"]) in rec.calls


def test_a_run_saved_before_the_point_order_setting_resumes_without_it():
    from pointea.engine.config import read_saved_config

    old = {k: v for k, v in TrainConfig().resolved().to_dict().items() if k != "shuffle_points"}
    assert read_saved_config(old, "old.json").shuffle_points is False
    assert read_saved_config({**old, "shuffle_points": True}, "new.json").shuffle_points is True
