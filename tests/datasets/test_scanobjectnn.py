"""ScanObjectNN: the release's h5 layout read exactly, its variants, splits and refusals,
the offline stand-in, and the task that trains on it."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from pointea.datasets import ScanObjectNN, write_scanobjectnn
from pointea.datasets.scanobjectnn import CLASSES, HOME, read_h5_split
from pointea.engine.config import TrainConfig
from pointea.errors import DataError, DatasetNotFoundError, InputError

SMALL = dict(train_per_class=4, test_per_class=2, points=96)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_scanobjectnn(tmp_path_factory.mktemp("sonn"), **SMALL)


def test_stand_in_has_the_release_layout(root):
    h5 = root / "h5_files"
    expected = {
        "main_split/training_objectdataset.h5": 60,
        "main_split/test_objectdataset.h5": 30,
        "main_split/training_objectdataset_augmentedrot_scale75.h5": 300,
        "main_split/test_objectdataset_augmentedrot_scale75.h5": 30,
        "main_split_nobg/training_objectdataset.h5": 60,
        "main_split_nobg/test_objectdataset.h5": 30,
    }
    for rel, n in expected.items():
        with h5py.File(h5 / rel, "r") as f:
            assert set(f) == {"data", "label", "mask"}, rel
            assert f["data"].shape == (n, 96, 3) and f["data"].dtype == np.float32
            assert f["label"].shape == (n,) and f["mask"].shape == (n, 96)
            assert sorted(set(f["label"][()].tolist())) == list(range(15))
            assert np.linalg.norm(f["data"][()], axis=-1).max() <= 1.0 + 1e-5


@pytest.mark.parametrize(
    ("variant", "sizes"),
    [
        ("pb_t50_rs", (270, 30, 300, 30)),
        ("OBJ_BG", (45, 15, 60, 30)),
        ("obj-only", (45, 15, 60, 30)),
    ],
)
def test_variants_and_splits(root, variant, sizes):
    got = [
        len(ScanObjectNN(root, s, variant=variant)) for s in ("train", "val", "trainval", "test")
    ]
    assert tuple(got) == sizes
    ds = ScanObjectNN(root, "val", variant=variant)
    assert ds.class_names == list(CLASSES) and ds.num_classes == 15
    assert len({int(d.y) for d in ds}) == 15  # every class in the carved validation split
    sample = ds[0]
    assert sample.pos.shape == (96, 3) and sample.pos.dtype == torch.float32
    assert sample.y.dtype == torch.long


def test_samples_are_the_file_rows(root):
    ds = ScanObjectNN(root, "test", variant="obj_only")
    with h5py.File(root / "h5_files/main_split_nobg/test_objectdataset.h5", "r") as f:
        data, label = f["data"][()], f["label"][()]
    for i in (0, 7, 29):
        assert torch.equal(ds[i].pos, torch.from_numpy(data[i]))
        assert int(ds[i].y) == int(label[i])


def test_train_and_val_are_disjoint_and_cover_the_training_file(root):
    train = ScanObjectNN(root, "train", variant="obj_bg")
    val = ScanObjectNN(root, "val", variant="obj_bg")
    rows = {tuple(d.pos[0].tolist()) for d in train}
    assert rows.isdisjoint(tuple(d.pos[0].tolist()) for d in val)
    assert len(rows) + len(val) == 60


def test_root_may_be_the_h5_folder_or_its_parent(root):
    a = ScanObjectNN(root, "test", variant="obj_bg")
    b = ScanObjectNN(root / "h5_files", "test", variant="obj_bg")
    assert torch.equal(a[3].pos, b[3].pos)


def test_caches_of_two_variants_in_one_folder_both_stay(root):
    ScanObjectNN(root, "test", variant="obj_bg")
    ScanObjectNN(root, "test", variant="pb_t50_rs")
    caches = sorted(
        p.name.rsplit("-", 1)[0] for p in (root / "h5_files/processed/main_split").iterdir()
    )
    assert "obj_bg-test" in caches and "pb_t50_rs-test" in caches


def test_missing_dataset_says_where_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="h5_files.zip") as exc:
        ScanObjectNN(tmp_path, "train")
    assert HOME in str(exc.value)
    (tmp_path / "main_split_nobg").mkdir()
    with pytest.raises(DatasetNotFoundError, match="training_objectdataset_augmentedrot_scale75"):
        ScanObjectNN(tmp_path, "train")  # the default variant's file is not there


def test_refusals(root):
    with pytest.raises(InputError, match="variant must be one of"):
        ScanObjectNN(root, "train", variant="pb_t25")
    with pytest.raises(InputError, match="terms of use"):
        ScanObjectNN(root, "train", download=True)
    with pytest.raises(InputError, match="split"):
        ScanObjectNN(root, "validation")


def _file(tmp_path, **keys):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        for k, v in keys.items():
            f.create_dataset(k, data=v)
    return path


@pytest.mark.parametrize(
    ("keys", "match"),
    [
        ({"data": np.zeros((2, 8, 2), np.float32), "label": np.zeros(2)}, "'data' has shape"),
        ({"data": np.zeros((2, 8, 3), np.float32)}, "missing HDF5 key 'label'"),
        ({"data": np.zeros((2, 8, 3), np.float32), "label": np.array([0, 15])}, "0..14"),
        ({"data": np.zeros((2, 8, 3), np.float32), "label": np.zeros(3)}, "3 labels for 2"),
        ({"data": np.zeros((0, 8, 3), np.float32), "label": np.zeros(0)}, "no points"),
        ({"data": np.zeros((2, 8, 3), np.int32), "label": np.zeros(2)}, "dtype int32"),
    ],
)
def test_bad_files_are_named_with_their_key(tmp_path, keys, match):
    path = _file(tmp_path, **keys)
    with pytest.raises(DataError, match=match) as exc:
        read_h5_split(path)
    assert "bad.h5" in str(exc.value)


def test_nan_coordinates_are_located(tmp_path):
    data = np.zeros((2, 8, 3), np.float32)
    data[1, 5, 2] = np.nan
    with pytest.raises(DataError, match=r"bad\.h5.*'data'.*\(1, 5, 2\)"):
        read_h5_split(_file(tmp_path, data=data, label=np.zeros(2)))


def test_truncated_file_is_named(root, tmp_path):
    src = root / "h5_files/main_split/test_objectdataset.h5"
    cut = tmp_path / "cut.h5"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(DataError, match="cut.h5"):
        read_h5_split(cut)


def test_stand_in_is_written_once(tmp_path):
    root = write_scanobjectnn(tmp_path, **SMALL)
    marker = root / "h5_files/.pointea_synthetic.json"
    before = marker.stat().st_mtime_ns
    write_scanobjectnn(tmp_path, **SMALL)
    write_scanobjectnn(tmp_path, reuse=True)  # any current stand-in is kept
    assert marker.stat().st_mtime_ns == before
    write_scanobjectnn(tmp_path, **{**SMALL, "test_per_class": 1})  # other sizes: rewritten
    with h5py.File(root / "h5_files/main_split/test_objectdataset.h5", "r") as f:
        assert f["data"].shape[0] == 15


def test_a_foreign_folder_is_not_replaced(tmp_path):
    (tmp_path / "h5_files").mkdir()
    (tmp_path / "h5_files" / "mine.txt").write_text("x")
    with pytest.raises(DataError, match="already exists"):
        write_scanobjectnn(tmp_path, **SMALL)
    assert (tmp_path / "h5_files" / "mine.txt").exists()


def test_task_recipe_and_settings():
    cfg = TrainConfig(task="scanobjectnn").resolved()
    assert (cfg.model, cfg.epochs, cfg.num_points, cfg.weight_decay) == ("pct_cls", 200, 1024, 1e-4)
    assert cfg.selection_metric == "overall_accuracy"
    TrainConfig(task="scanobjectnn", variant="obj_only").resolved()
    with pytest.raises(InputError, match="has no variants"):
        TrainConfig(task="modelnet40", variant="obj_bg").resolved()
    with pytest.raises(InputError, match="no normals"):
        TrainConfig(task="scanobjectnn", use_normals=True).resolved()
    with pytest.raises(InputError, match="terms"):
        TrainConfig(task="scanobjectnn", download=True).resolved()


@pytest.mark.e2e
def test_training_on_the_stand_in_end_to_end(root, tmp_path):
    import json

    from pointea.cli.evaluate import main as evaluate
    from pointea.cli.train import main

    out = tmp_path / "run"
    argv = ["--task", "scanobjectnn", "--variant", "obj_bg", "--data-root", str(root),
            "--model", "pct_cls_tiny", "--epochs", "2", "--batch-size", "8", "--num-points",
            "64", "--no-progress", "--output-dir", str(out)]  # fmt: skip
    assert main(argv) == 0
    test = json.loads((out / "test_metrics.json").read_text())
    assert test["task"] == "scanobjectnn" and test["num_samples"] == 30
    assert set(test["per_class_accuracy"]) == set(CLASSES)
    assert evaluate([str(out), "--output", str(tmp_path / "m.json"), "--no-progress"]) == 0
    again = json.loads((tmp_path / "m.json").read_text())
    assert again["overall_accuracy"] == test["overall_accuracy"]
