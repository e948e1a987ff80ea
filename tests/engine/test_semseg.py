"""Scene segmentation: presets, exact whole-room inference, block voting, metrics, trainer."""

from __future__ import annotations

import json

import pytest
import torch
from test_train_resume import StopAfter

from pointea.datasets.s3dis import NUM_CLASSES
from pointea.datasets.synthetic.rooms import write_rooms
from pointea.engine import Callback, TrainConfig, load_checkpoint, train
from pointea.errors import InputError
from pointea.inference.blocks import block_vote_logits
from pointea.metrics import SemSegMeter, semseg_metrics, semseg_metrics_from_confusion
from pointea.models import create_model, list_models
from pointea.models.semseg import room_features, room_logits

TINY = dict(embed_channels=16, fuse_channels=32, category_channels=8, head_channels=(32, 16))


def room(n: int = 600, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    xyz = torch.rand(n, 3, generator=g) * torch.tensor([6.0, 4.0, 3.0]) + 10
    rgb = torch.randint(0, 256, (n, 3), generator=g, dtype=torch.uint8)
    return xyz, rgb


def test_semseg_presets_are_registered_with_both_attentions():
    assert {"pct_semseg", "pct_semseg_tiny"} <= set(list_models("semseg"))


@pytest.mark.parametrize("name", ["pct_semseg", "pct_semseg_tiny"])
@pytest.mark.parametrize("attention", ["external", "self"])
def test_forward_backward_every_parameter_gets_a_gradient(name, attention):
    model = create_model(name, attention=attention).train()
    pos, x = room_features(*room(80))
    batch = torch.arange(2).repeat_interleave(40)
    out = model(x, pos, batch)
    assert out.shape == (80, 13) and torch.isfinite(out).all()
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing, f"no gradient for {missing}"
    assert create_model(name, **model.hparams).hparams == model.hparams


@pytest.mark.parametrize("attention", ["external", "self"])
def test_batch_independence(attention):
    model = create_model("pct_semseg_tiny", attention=attention, **TINY).eval()
    pos, x = room_features(*room(90))
    batch = torch.tensor([0] * 50 + [1] * 40)
    with torch.no_grad():
        together = model(x, pos, batch)
        for b in range(2):
            sel = batch == b
            assert torch.allclose(model(x[sel], pos[sel]), together[sel], atol=1e-5)


def test_whole_room_streaming_equals_the_plain_forward():
    model = create_model("pct_semseg_tiny", **TINY).eval()
    xyz, rgb = room(1000)
    with torch.no_grad():
        plain = model(*room_features(xyz, rgb)[::-1])
    for chunk in (1000, 333, 64):
        streamed = room_logits(model, xyz, rgb, chunk_size=chunk)
        assert torch.allclose(streamed, plain, atol=1e-4), chunk


def test_room_features_follow_the_pointnet_convention():
    xyz, rgb = room(200)
    pos, x = room_features(xyz, rgb)
    assert torch.allclose(pos[:, 2].min(), torch.tensor(0.0))  # z above the floor
    assert torch.allclose(pos[:, :2].amax(0) + pos[:, :2].amin(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(x[:, :3] * 255, rgb.float(), atol=1e-4)
    assert torch.allclose(x[:, 3:].amin(0), torch.zeros(3)) and torch.allclose(
        x[:, 3:].amax(0), torch.ones(3)
    )


def test_bad_inputs_are_clear_errors():
    model = create_model("pct_semseg_tiny", **TINY).eval()
    with pytest.raises(InputError, match="x"):
        model(torch.zeros(5, 3), torch.zeros(5, 2))
    with pytest.raises(InputError, match="eval mode"):
        room_logits(model.train(), *room(10))


def test_block_vote_predicts_every_point():
    model = create_model("pct_semseg_tiny", **TINY).eval()
    xyz, rgb = room(800)
    probs = block_vote_logits(model, xyz, rgb, num_points=64)
    assert probs.shape == (800, 13) and bool((probs.sum(1) >= 1 - 1e-4).all())


def test_metrics_from_a_known_confusion_matrix():
    # truth 0 0 0 1 1 2 ; prediction 0 0 1 1 1 1
    m = semseg_metrics(torch.tensor([0, 0, 1, 1, 1, 1]), torch.tensor([0, 0, 0, 1, 1, 2]), 4)
    assert m["overall_accuracy"] == pytest.approx(4 / 6)
    assert m["per_class_iou"][:3] == pytest.approx([2 / 3, 2 / 4, 0.0])
    assert m["per_class_iou"][3] is None  # absent from truth and prediction
    assert m["mean_iou"] == pytest.approx((2 / 3 + 0.5 + 0) / 3)
    assert m["mean_class_accuracy"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    meter = SemSegMeter(4)
    meter.update(torch.tensor([0, 0, 1]), torch.tensor([0, 0, 0]))
    meter.update(torch.tensor([1, 1, 1]), torch.tensor([1, 1, 2]))
    assert meter.compute() == semseg_metrics_from_confusion(meter.state())
    assert meter.compute()["mean_iou"] == pytest.approx(m["mean_iou"])


@pytest.fixture(scope="module")
def rooms(tmp_path_factory):
    root = tmp_path_factory.mktemp("rooms")
    write_rooms(root, rooms_per_area=2, density=25, seed=1)
    return root


@pytest.fixture(scope="module")
def small_rooms(tmp_path_factory):
    root = tmp_path_factory.mktemp("small_rooms")
    write_rooms(root, rooms_per_area=1, density=8, seed=2)
    return root


TRAIN = ["--model", "pct_semseg_tiny", "--epochs", "2", "--steps-per-epoch", "2",
         "--batch-size", "2", "--num-points", "128", "--val-fraction", "0.2", "--seed", "5",
         "--device", "cpu", "--no-progress"]


def _strip_times(path):
    lines = (path / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k != "time_s"} for x in lines]


class CountSteps(Callback):
    def __init__(self):
        self.steps, self.shapes = 0, set()

    def on_forward_end(self, state, batch, logits):
        self.shapes.add(tuple(logits.shape))
        return logits

    def on_step_end(self, state, loss):
        self.steps += 1


@pytest.mark.e2e
def test_semseg_trains_through_the_engine(small_rooms, tmp_path):
    """The s3dis task runs the same train() as the other tasks: hooks, run folder,
    checkpoints of kind "semseg", whole-room and block-vote test numbers side by side
    (under bf16 autocast, which the block-vote sums must survive)."""
    from pointea.cli.semseg import main

    counter = CountSteps()
    out = tmp_path / "run"
    argv = ["--data-root", str(small_rooms), *TRAIN, "--block-vote", "--bf16",
            "--output-dir", str(out)]
    assert main(argv, callbacks=[counter]) == 0
    assert counter.steps == 2 * 2 and counter.shapes == {(256, NUM_CLASSES)}
    test = json.loads((out / "test_metrics.json").read_text())
    for key in ("block_vote", "majority_baseline"):
        assert {"overall_accuracy", "mean_iou"} <= set(test[key]), key
    assert test["mean_iou"] is not None
    assert test["task"] == "s3dis" and len(test["per_class_iou"]) == NUM_CLASSES
    assert test["num_points"] == test["block_vote"]["num_points"] > 0
    config = json.loads((out / "config.json").read_text())
    assert config["optimizer"] == "adamw" and config["steps_per_epoch"] == 2
    ck = load_checkpoint(out / "checkpoints" / "best.pt")
    assert (ck["task"], ck["kind"]) == ("s3dis", "semseg")
    assert ck["model_name"] == "pct_semseg_tiny"
    assert [r["epoch"] for r in _strip_times(out)] == [1, 2]
    assert main(argv) == 1  # a second run into the folder is refused
    from pointea.cli.evaluate import main as evaluate_main

    assert evaluate_main([str(out), "--output", str(tmp_path / "ev.json"), "--no-progress"]) == 0
    ev = json.loads((tmp_path / "ev.json").read_text())
    assert ev["task"] == "s3dis" and ev["points"] == "all"
    assert ev["per_class_iou"] == test["per_class_iou"] and ev["mean_iou"] == test["mean_iou"]


@pytest.mark.slow  # three short training runs with whole-room validation
def test_resume_after_a_kill_is_identical(small_rooms, tmp_path):
    from pointea.cli.semseg import main

    full, cut = tmp_path / "full", tmp_path / "cut"
    base = ["--data-root", str(small_rooms), *TRAIN]
    assert main([*base, "--output-dir", str(full)]) == 0
    assert main([*base, "--output-dir", str(cut)], callbacks=[StopAfter(1)]) == 130
    assert load_checkpoint(cut / "checkpoints/last.pt")["epoch"] == 1
    assert main(["--resume", str(cut), "--no-progress"]) == 0
    a = load_checkpoint(full / "checkpoints/last.pt")
    b = load_checkpoint(cut / "checkpoints/last.pt")
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert _strip_times(full) == _strip_times(cut)
    ta = json.loads((full / "test_metrics.json").read_text())
    assert ta == json.loads((cut / "test_metrics.json").read_text())


@pytest.mark.slow
def test_training_beats_the_majority_baseline(rooms, tmp_path):
    cfg = TrainConfig(
        task="s3dis", model="pct_semseg_tiny", data_root=str(rooms), epochs=8,
        steps_per_epoch=8, batch_size=2, num_points=1024, lr=5e-3, val_fraction=0.2, seed=5,
        device="cpu", output_dir=str(tmp_path / "learn"),
    )
    report = train(cfg, progress=False).test_metrics
    assert report["mean_iou"] > 2 * report["majority_baseline"]["mean_iou"]
    assert report["overall_accuracy"] > report["majority_baseline"]["overall_accuracy"]
    assert len(report["per_class_iou"]) == NUM_CLASSES


def test_cli_reports_missing_s3dis_with_where_to_get_it(tmp_path, capsys):
    from pointea.cli.semseg import main

    assert main(["--data-root", str(tmp_path), "--output-dir", str(tmp_path / "run")]) == 2
    assert "buildingparser.stanford.edu" in capsys.readouterr().err


def test_cli_rejects_settings_that_do_not_fit_scenes(tmp_path, capsys):
    from pointea.cli.semseg import main
    from pointea.cli.train import main as main_train

    for bad, match in (
        (["--download"], "buildingparser"),
        (["--model", "pct_seg_tiny"], "not a scene"),
        (["--test-area", "7"], "test_area"),
        (["--steps-per-epoch", "0"], "steps_per_epoch"),
    ):
        with pytest.raises(SystemExit) as exc:
            main([*bad, "--output-dir", str(tmp_path / "x")])
        assert exc.value.code == 2 and match in capsys.readouterr().err, bad
    with pytest.raises(SystemExit):
        main_train(["--block-vote", "--output-dir", str(tmp_path / "y")])
    assert "only apply to s3dis" in capsys.readouterr().err


@pytest.mark.slow  # two torchrun processes (gloo, CPU)
def test_torchrun_two_processes_train_and_score_every_room_once(small_rooms, tmp_path):
    import os
    import subprocess
    import sys

    # no dropout (each process has its own masks) and SGD: Adam's normalised step would
    # blow float-rounding noise in near-zero gradients (biases before BatchNorm) up to lr
    argv = ["--data-root", str(small_rooms), *TRAIN, "--dropout", "0", "--batch-size", "4",
            "--optimizer", "sgd", "--lr", "0.01"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = {}
    for nproc in (1, 2):
        out = tmp_path / f"p{nproc}"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1",
               f"--nproc_per_node={nproc}", "-m", "pointea.cli.semseg", *argv,
               "--output-dir", str(out)]
        proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert proc.stdout.count("whole rooms, exact") == 1  # only rank 0 reports
        runs[nproc] = out
    one = json.loads((runs[1] / "test_metrics.json").read_text())
    two = json.loads((runs[2] / "test_metrics.json").read_text())
    # the test rooms are sharded over the processes; each point is counted once
    assert two["num_rooms"] == one["num_rooms"] and two["num_points"] == one["num_points"]
    a = load_checkpoint(runs[1] / "checkpoints/last.pt")
    b = load_checkpoint(runs[2] / "checkpoints/last.pt")
    for key, value in a["model"].items():
        if value.is_floating_point():
            assert torch.allclose(value, b["model"][key], rtol=1e-4, atol=1e-5), key
