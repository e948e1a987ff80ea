"""Metrics against hand-computed cases, edge cases included."""

from __future__ import annotations

import math

import pytest
import torch

from pointea.errors import InputError
from pointea.metrics import (
    ClassificationMeter,
    SegmentationMeter,
    classification_metrics,
    confusion_matrix,
    predict_parts,
    restrict_to_category,
    segmentation_metrics,
    shape_ious,
)

# two toy categories: category 0 owns parts {0, 1}, category 1 owns parts {2, 3, 4}
PARTS = [[0, 1], [2, 3, 4]]


def test_confusion_and_accuracies_by_hand():
    target = torch.tensor([0, 0, 0, 1, 1, 2])
    pred = torch.tensor([0, 0, 1, 1, 0, 2])
    cm = confusion_matrix(pred, target, 3)
    assert cm.tolist() == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]
    m = classification_metrics(pred, target, 3)
    assert m["overall_accuracy"] == pytest.approx(4 / 6)
    assert m["per_class_accuracy"] == pytest.approx([2 / 3, 1 / 2, 1.0])
    assert m["mean_class_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert m["num_samples"] == 6


def test_logits_equal_ids_and_absent_class_left_out_of_macc():
    logits = torch.tensor([[3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 5.0, 0.0]])
    target = torch.tensor([0, 1, 0])
    m = classification_metrics(logits, target, 3)
    assert m["overall_accuracy"] == pytest.approx(2 / 3)
    assert m["per_class_accuracy"][2] is None  # class 2 never occurs
    assert m["mean_class_accuracy"] == pytest.approx((1 / 2 + 1) / 2)


def test_classification_meter_accumulates_and_sums_states():
    a, b = ClassificationMeter(3, ["x", "y", "z"]), ClassificationMeter(3, ["x", "y", "z"])
    a.update(torch.tensor([0, 1]), torch.tensor([0, 0]))
    b.update(torch.tensor([2, 2]), torch.tensor([2, 1]))
    merged = ClassificationMeter(3, ["x", "y", "z"])
    merged.load_state(a.state() + b.state())
    whole = classification_metrics(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 0, 2, 1]), 3)
    got = merged.compute()
    assert got["overall_accuracy"] == pytest.approx(whole["overall_accuracy"])
    assert got["per_class_accuracy"] == {"x": 0.5, "y": 0.0, "z": 1.0}
    assert "ClassificationMeter" in repr(merged)


def test_classification_bad_inputs():
    with pytest.raises(InputError, match="outside"):
        confusion_matrix(torch.tensor([0, 5]), torch.tensor([0, 1]), 3)
    with pytest.raises(InputError, match="match"):
        confusion_matrix(torch.tensor([0, 1, 2]), torch.tensor([0, 1]), 3)


def test_restrict_to_category_masks_other_parts():
    logits = torch.zeros(4, 5)
    logits[:, 4] = 10.0  # part 4 (category 1) is the global favourite
    logits[:, 1] = 1.0
    category = torch.tensor([0, 1])
    batch = torch.tensor([0, 0, 1, 1])
    masked = restrict_to_category(logits, category, PARTS, batch)
    assert torch.isinf(masked[:2, 2:]).all() and torch.isfinite(masked[:2, :2]).all()
    assert torch.isinf(masked[2:, :2]).all() and torch.isfinite(masked[2:, 2:]).all()
    assert predict_parts(logits, category, PARTS, batch).tolist() == [1, 1, 4, 4]


def test_shape_iou_by_hand_with_absent_part_counted_as_one():
    # one shape of category 1 (parts 2, 3, 4); part 4 absent from truth and prediction
    target = torch.tensor([2, 2, 3, 3])
    pred = torch.tensor([2, 3, 3, 3])
    ious = shape_ious(pred, target, torch.tensor([1]), PARTS)
    # part 2: inter 1, union 2 -> 0.5; part 3: inter 2, union 3 -> 2/3; part 4: 1
    assert ious.tolist() == pytest.approx([(0.5 + 2 / 3 + 1.0) / 3])


def test_shape_iou_restricts_logits_before_argmax():
    # unrestricted argmax would pick part 4 (other category) everywhere
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0, 9.0], [0.0, 1.0, 0.0, 0.0, 9.0]])
    target = torch.tensor([0, 1])
    ious = shape_ious(logits, target, torch.tensor([0]), PARTS)
    assert ious.tolist() == [1.0]
    # given ids are taken as they are: a foreign part counts against the true part
    ious = shape_ious(torch.tensor([4, 1]), target, torch.tensor([0]), PARTS)
    assert ious.tolist() == pytest.approx([(0.0 + 1.0) / 2])


def test_instance_vs_class_miou_by_hand():
    # shapes: A (cat 0) IoU 1, B (cat 0) IoU 0.5, C (cat 1) IoU 0.25-ish
    target = torch.tensor([0, 1, 0, 0, 2, 3, 4, 4])
    pred = torch.tensor([0, 1, 0, 1, 3, 3, 4, 2])
    batch = torch.tensor([0, 0, 1, 1, 2, 2, 2, 2])
    category = torch.tensor([0, 0, 1])
    a = 1.0
    b = (0.5 + 0.0) / 2  # part 0: inter 1 union 2; part 1: inter 0 union 1
    c = (0.0 + 0.5 + 0.5) / 3  # part 2: 0/2, part 3: 1/2, part 4: 1/2
    m = segmentation_metrics(pred, target, category, PARTS, batch, ["mug", "lamp"])
    assert m["instance_miou"] == pytest.approx((a + b + c) / 3)
    assert m["class_miou"] == pytest.approx(((a + b) / 2 + c) / 2)
    assert m["per_category_iou"] == pytest.approx({"mug": (a + b) / 2, "lamp": c})
    assert m["point_accuracy"] == pytest.approx(5 / 8)
    assert m["num_shapes"] == 3


def test_segmentation_meter_absent_category_is_none_and_states_sum():
    parts = [[0, 1], [2, 3, 4], [5, 6]]
    m1, m2 = SegmentationMeter(parts), SegmentationMeter(parts)
    m1.update(torch.tensor([0, 1]), torch.tensor([0, 0]), torch.tensor([0]))
    m2.update(torch.tensor([2, 3, 3]), torch.tensor([2, 3, 3]), torch.tensor([1]))
    merged = SegmentationMeter(parts)
    merged.load_state(m1.state() + m2.state())
    out = merged.compute()
    assert out["per_category_iou"]["2"] is None
    s1 = (0.5 + 0.0) / 2
    assert out["instance_miou"] == pytest.approx((s1 + 1.0) / 2)
    assert out["class_miou"] == pytest.approx((s1 + 1.0) / 2)
    empty = SegmentationMeter(parts).compute()
    assert empty["instance_miou"] is None and empty["num_shapes"] == 0
    assert not math.isnan(out["instance_miou"])


def test_segmentation_bad_inputs():
    with pytest.raises(InputError, match="batch"):
        shape_ious(torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([0, 1]), PARTS)
    with pytest.raises(InputError, match="part ids"):
        shape_ious(torch.tensor([0, 9]), torch.tensor([0, 1]), torch.tensor([0]), PARTS)


def test_part_mask_built_once_per_device(monkeypatch, device):
    """The category part table is built once per table and device, not at every training
    step (each build is one small host-to-device copy per category)."""
    import pointea.metrics.parts as metrics

    built = []
    make = metrics.category_part_mask
    monkeypatch.setattr(
        metrics, "category_part_mask", lambda *a, **k: built.append(1) or make(*a, **k)
    )
    parts = [[0, 1, 2], [3, 4], [5]]  # a table no other test uses: the cache is cold
    logits = torch.randn(6, 6, device=device)
    category = torch.tensor([0, 1], device=device)
    batch = torch.tensor([0, 0, 0, 1, 1, 1], device=device)
    target = torch.tensor([0, 1, 2, 3, 4, 3], device=device)
    for _ in range(3):
        pred = predict_parts(logits, category, parts, batch)
        ious = shape_ious(logits, target, category, parts, batch)
    assert len(built) == 1
    assert pred.device == logits.device and ious.device == target.device
    fresh = metrics.category_part_mask(parts, 6)  # the public function: a fresh tensor
    assert fresh.tolist()[1] == [False, False, False, True, True, False]


def test_part_mask_cache_follows_the_part_count():
    logits = torch.zeros(2, 4)
    logits[:, 3] = 5.0  # part 3 exists only in the wider table
    category = torch.tensor([0])
    assert predict_parts(logits, category, [[0, 1], [2, 3]]).tolist() == [0, 0]
    assert predict_parts(logits[:, :3], category, [[0, 1], [2]]).tolist() == [0, 0]
    assert predict_parts(logits, torch.tensor([1]), [[0, 1], [2, 3]]).tolist() == [3, 3]


def _six_runs(tmp_path, seed=0):
    """Six fake 6-fold runs: per test area, random truths and predictions (right about
    two thirds of the time, area sizes and class mixes unequal), written the way
    pointea-semseg writes them; returns the run folders and every point's truth and
    prediction."""
    import json

    from pointea.metrics import semseg_metrics

    g = torch.Generator().manual_seed(seed)
    runs, preds, targets = [], [], []
    for area in (3, 1, 6, 2, 5, 4):  # any order
        n = 200 + 150 * area
        target = torch.randint(0, 4 + area % 3, (n,), generator=g)
        wrong = torch.rand(n, generator=g) < 0.3 + 0.05 * area
        pred = torch.where(wrong, torch.randint(0, 13, (n,), generator=g), target)
        run = tmp_path / f"fold{area}"
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"task": "s3dis", "test_area": area}))
        record = {"task": "s3dis", "split": "test", **semseg_metrics(pred, target, 13)}
        (run / "test_metrics.json").write_text(json.dumps(record))
        runs.append(run)
        preds.append(pred)
        targets.append(target)
    return runs, torch.cat(preds), torch.cat(targets)


def test_six_fold_pooling_equals_scoring_all_points_together(tmp_path):
    from pointea.metrics import pool_runs, semseg_metrics

    runs, pred, target = _six_runs(tmp_path)
    pooled = pool_runs(runs)
    direct = semseg_metrics(pred, target, 13)
    for key in ("overall_accuracy", "mean_class_accuracy", "mean_iou"):
        assert pooled[key] == pytest.approx(direct[key], abs=1e-12)
    assert pooled["confusion"] == direct["confusion"]
    assert pooled["per_class_iou"] == pytest.approx(direct["per_class_iou"])
    assert pooled["num_points"] == target.numel()
    assert sorted(pooled["test_areas"]) == [1, 2, 3, 4, 5, 6]
    # the published 6-fold numbers pool the points: not the mean of the six runs' mIoU
    mean_of_runs = sum(r["mean_iou"] for r in pooled["per_run"]) / 6
    assert abs(mean_of_runs - pooled["mean_iou"]) > 1e-3


def test_pooling_refuses_runs_without_a_confusion_matrix_or_the_same_area_twice(tmp_path):
    import json

    from pointea.errors import DataError
    from pointea.metrics import pool_runs

    runs, _, _ = _six_runs(tmp_path)
    with pytest.raises(DataError, match="fold3.* tests Area 3, as another"):
        pool_runs([runs[0], runs[0]])
    record = json.loads((runs[1] / "test_metrics.json").read_text())
    del record["confusion"]
    (runs[1] / "test_metrics.json").write_text(json.dumps(record))
    with pytest.raises(DataError, match="fold1/test_metrics.json: holds no 'confusion'"):
        pool_runs(runs)
    with pytest.raises(DataError, match="missing"):
        pool_runs([tmp_path / "nowhere"])


def test_pool_confusions_checks_shapes():
    from pointea.metrics import pool_confusions

    with pytest.raises(InputError, match="shape"):
        pool_confusions([torch.eye(3), torch.eye(4)])
    out = pool_confusions([[[1, 0], [0, 1]], [[0, 2], [0, 0]]])
    assert out["confusion"] == [[1, 2], [0, 1]] and out["overall_accuracy"] == 0.5


@pytest.mark.e2e
def test_pointea_eval_pool_prints_and_writes_the_pooled_numbers(tmp_path, capsys):
    import json

    from pointea.cli.evaluate import main
    from pointea.metrics import semseg_metrics

    runs, pred, target = _six_runs(tmp_path)
    out = tmp_path / "sixfold.json"
    assert main(["--pool", *map(str, runs), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    direct = semseg_metrics(pred, target, 13)
    assert f"mIoU {100 * direct['mean_iou']:.2f} %" in printed.splitlines()[6]
    assert json.loads(out.read_text())["confusion"] == direct["confusion"]
    assert main(["--pool", str(tmp_path / "nowhere")]) == 2
    assert "nowhere/test_metrics.json: missing" in capsys.readouterr().err
