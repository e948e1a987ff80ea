"""pointea-eval on checkpoints of tiny runs: numbers, voting, and clear refusals."""

from __future__ import annotations

import json

import pytest
import torch

from pointea.cli.evaluate import main
from pointea.cli.train import main as train_main
from pointea.datasets import ensure_synthetic
from pointea.inference import evaluate_checkpoint
from pointea.models import load_model, save_pretrained


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("eval")
    data = ensure_synthetic(
        "modelnet40",
        root=base / "d",
        num_classes=3,
        train_per_class=6,
        test_per_class=2,
        points=128,
    )
    out = base / "run"
    rc = train_main(
        [
            "--data-root",
            str(data),
            "--model",
            "pct_cls_tiny",
            "--batch-size",
            "4",
            "--num-points",
            "64",
            "--no-progress",
            "--epochs",
            "2",
            "--output-dir",
            str(out),
        ]
    )
    assert rc == 0
    return data, out


@pytest.mark.e2e
def test_eval_reproduces_the_runs_test_numbers(trained, tmp_path, capsys):
    data, out = trained
    report = tmp_path / "ev.json"
    rc = main([str(out / "checkpoints/best.pt"), "--no-progress", "--output", str(report)])
    assert rc == 0
    assert "overall accuracy" in capsys.readouterr().out
    got = json.loads(report.read_text())
    expected = json.loads((out / "test_metrics.json").read_text())
    for key in ("overall_accuracy", "mean_class_accuracy", "per_class_accuracy", "num_samples"):
        assert got[key] == expected[key], key
    assert got["split"] == "test" and got["task"] == "modelnet40"
    run_folder = evaluate_checkpoint(out)  # a run folder means its checkpoints/best.pt
    assert run_folder["overall_accuracy"] == expected["overall_accuracy"]


@pytest.mark.e2e
def test_voting_reports_both_and_is_repeatable(trained):
    _, out = trained
    ckpt = out / "checkpoints/best.pt"
    one = evaluate_checkpoint(ckpt, votes=1)
    voted = evaluate_checkpoint(ckpt, votes=3, seed=1)
    again = evaluate_checkpoint(ckpt, votes=3, seed=1)
    assert voted["votes"] == 3 and voted["no_voting"]["overall_accuracy"] == one["overall_accuracy"]
    assert voted["overall_accuracy"] == again["overall_accuracy"]
    assert voted["per_class_accuracy"] == again["per_class_accuracy"]


@pytest.mark.e2e
def test_val_split_and_pretrained_folder(trained, tmp_path):
    data, out = trained
    val = evaluate_checkpoint(out / "checkpoints/best.pt", split="val")
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    best = json.loads((out / "test_metrics.json").read_text())["epoch"]
    assert val["overall_accuracy"] == lines[best - 1]["val_overall_accuracy"]
    model, info = load_model(out / "checkpoints/best.pt")
    folder = save_pretrained(
        model, tmp_path / "pre", class_names=info["class_names"], num_points=64
    )
    res = evaluate_checkpoint(folder, task="modelnet40", overrides={"data_root": str(data)})
    assert (
        res["overall_accuracy"]
        == json.loads((out / "test_metrics.json").read_text())["overall_accuracy"]
    )


@pytest.mark.e2e
def test_wrong_task_is_refused(trained, capsys):
    _, out = trained
    rc = main([str(out / "checkpoints/best.pt"), "--task", "shapenetpart", "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "task: checkpoint is modelnet40 (classification), expected shapenetpart" in err


def test_not_a_checkpoint_and_missing_file(tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    torch.save({"weights": torch.zeros(2)}, junk)
    assert main([str(junk), "--no-progress"]) == 2
    assert main([str(tmp_path / "absent.pt"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "not a pointea model" in err and "no such file" in err
    assert "Traceback" not in err


@pytest.mark.e2e
def test_dataset_with_other_classes_is_refused(trained, tmp_path, capsys):
    _, out = trained
    other = ensure_synthetic(
        "modelnet40",
        root=tmp_path / "o",
        num_classes=4,
        train_per_class=2,
        test_per_class=1,
        points=64,
    )
    rc = main([str(out / "checkpoints/best.pt"), "--data-root", str(other), "--no-progress"])
    assert rc == 2
    assert "predicts 3 classes" in capsys.readouterr().err


def test_bad_flags(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["x.pt", "--votes", "0"])
    assert exc.value.code == 2 and "--votes" in capsys.readouterr().err


@pytest.mark.e2e
def test_metrics_record_the_points_scored(trained, tmp_path, capsys):
    _, out = trained
    report = tmp_path / "ev.json"
    assert main([str(out / "checkpoints/best.pt"), "--no-progress", "--output", str(report)]) == 0
    assert json.loads(report.read_text())["points"] == 64
    assert "64 points each" in capsys.readouterr().out
    rc = main([str(out / "checkpoints/best.pt"), "--no-progress", "--all-points"])
    assert rc == 2 and "does not score every point" in capsys.readouterr().err


@pytest.mark.slow
def test_all_points_scores_every_point_of_every_shape(tmp_path, capsys):
    from pointea.datasets import ShapeNetPart

    data = ensure_synthetic(
        "shapenetpart",
        root=tmp_path / "d",
        categories=["Mug", "Lamp"],
        train_per_category=2,
        val_per_category=1,
        test_per_category=2,
        points=120,
    )
    run = tmp_path / "run"
    assert (
        train_main(
            [
                "--data-root",
                str(data),
                "--model",
                "pct_seg_tiny",
                "--batch-size",
                "4",
                "--num-points",
                "48",
                "--epochs",
                "1",
                "--no-progress",
                "--output-dir",
                str(run),
                "--task",
                "shapenetpart",
            ]
        )
        == 0
    )
    ds = ShapeNetPart(data, "test", categories=["Mug", "Lamp"])
    full = sum(ds.get(i).pos.size(0) for i in range(len(ds)))
    report = tmp_path / "all.json"
    rc = main([str(run), "--all-points", "--no-progress", "--output", str(report)])
    assert rc == 0, capsys.readouterr().err
    got = json.loads(report.read_text())
    assert got["points"] == "all" and got["points_scored"] == full > 48 * len(ds)
    assert got["num_shapes"] == len(ds)
    sampled = evaluate_checkpoint(run)
    assert sampled["points"] == 48 and sampled["num_shapes"] == len(ds)
