"""ModelNet40 readers: both published formats read back field by field; splits; cache;
one test per kind of bad input, each expecting a DataError that names the file."""

from __future__ import annotations

import os
import shutil

import h5py
import numpy as np
import pytest
import torch
from pointea_testing import (
    CLASS_NAMES,
    MN_HDF5,
    REPO_ROOT,
    write_modelnet_hdf5,
    write_modelnet_resampled,
)

from pointea.datasets import ModelNet40, carve_validation
from pointea.datasets import modelnet40 as mn
from pointea.errors import DataError, DatasetNotFoundError, InputError
from pointea.transforms import PCTScaleShift, SubsamplePoints


@pytest.fixture
def mn_hdf5(tmp_path):
    return tmp_path, write_modelnet_hdf5(tmp_path)


@pytest.fixture
def mn_resampled(tmp_path):
    return tmp_path, write_modelnet_resampled(tmp_path)


def _stack(ds):
    return torch.stack([d.pos for d in ds]), torch.cat([d.y for d in ds])


# ----------------------------------------------------------------- reading, field by field
def test_hdf5_trainval_and_test_match_files(mn_hdf5):
    root, ref = mn_hdf5
    for split, key in (("trainval", "train"), ("test", "test")):
        ds = ModelNet40(root, split, use_normals=True)
        assert len(ds) == len(ref[key]["label"])
        assert ds.class_names == CLASS_NAMES and ds.num_classes == 4
        for i, d in enumerate(ds):
            assert d.pos.dtype == torch.float32 and d.pos.shape == (32, 3)
            assert d.y.dtype == torch.int64 and d.y.shape == (1,)
            np.testing.assert_array_equal(d.pos.numpy(), ref[key]["pos"][i])
            np.testing.assert_array_equal(d.x.numpy(), ref[key]["normal"][i])
            assert int(d.y) == ref[key]["label"][i]


def test_hdf5_without_normals_has_no_x(mn_hdf5):
    root, _ = mn_hdf5
    d = ModelNet40(root, "test")[0]
    assert d.x is None and set(d.keys()) == {"pos", "y"}


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int16, np.uint16, np.int64])
@pytest.mark.parametrize("label_2d", [True, False])
def test_hdf5_label_dtypes_and_shapes(tmp_path, dtype, label_2d):
    ref = write_modelnet_hdf5(tmp_path, label_dtype=dtype, label_2d=label_2d)
    ds = ModelNet40(tmp_path, "test")
    assert [int(d.y) for d in ds] == ref["test"]["label"].tolist()


@pytest.mark.parametrize("prefix", ["", f"data/{MN_HDF5}/", f"{MN_HDF5}/", "./"])
def test_list_prefixes_accepted(tmp_path, prefix):
    write_modelnet_hdf5(tmp_path, prefix=prefix)
    assert len(ModelNet40(tmp_path, "test")) == 5


def test_root_may_be_the_archive_folder(mn_hdf5):
    root, _ = mn_hdf5
    a = ModelNet40(root / MN_HDF5, "test")
    b = ModelNet40(root, "test")
    assert torch.equal(_stack(a)[0], _stack(b)[0])


def test_resampled_read_back(mn_resampled):
    root, ref = mn_resampled
    ds = ModelNet40(root, "train", format="resampled", use_normals=True, val_fraction=0.0)
    assert len(ds) == len(ref["train"]["ids"]) and ds.class_names == CLASS_NAMES
    for d, table, label in zip(ds, ref["train"]["tables"], ref["train"]["label"], strict=True):
        np.testing.assert_allclose(d.pos.numpy(), table[:, :3])
        np.testing.assert_allclose(d.x.numpy(), table[:, 3:])
        assert int(d.y) == label
    # class from an id with an underscore in the class name (night_stand_0004)
    assert "night_stand" in CLASS_NAMES and len(ModelNet40(root, "test", format="resampled")) == 4


# ----------------------------------------------------------------- splits
def test_val_is_carved_from_train_disjoint_and_stratified(tmp_path):
    write_modelnet_hdf5(tmp_path, per_file=(40, 40), points=8)
    train = ModelNet40(tmp_path, "train", val_fraction=0.25)
    val = ModelNet40(tmp_path, "val", val_fraction=0.25)
    full = ModelNet40(tmp_path, "trainval")
    assert len(train) + len(val) == len(full) == 80
    key = lambda d: d.pos.numpy().tobytes()  # noqa: E731
    tr, va, fu = ({key(d) for d in s} for s in (train, val, full))
    assert not tr & va and tr | va == fu
    counts = np.bincount([int(d.y) for d in val], minlength=4)
    assert (counts == 5).all()  # 20 per class * 0.25


def test_val_carving_is_deterministic_and_seeded():
    labels = np.repeat(np.arange(5), 30)
    a = carve_validation(labels, 0.2, seed=3)
    b = carve_validation(labels, 0.2, seed=3)
    c = carve_validation(labels, 0.2, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])
    assert np.array_equal(np.sort(np.concatenate(a)), np.arange(150))


def test_carving_keeps_every_class_in_train():
    labels = np.array([0, 0, 1, 1, 1, 2])  # tiny classes
    train, val = carve_validation(labels, 0.9, seed=0)
    assert set(labels[train]) == {0, 1, 2} and set(labels[val]) == {0, 1}


def test_bad_arguments():
    with pytest.raises(InputError, match="split"):
        ModelNet40("nowhere", "validation")
    with pytest.raises(InputError, match="format"):
        ModelNet40("nowhere", format="off")
    with pytest.raises(InputError, match="val_fraction"):
        ModelNet40("nowhere", "val", val_fraction=0.0)
    with pytest.raises(InputError, match="val_fraction"):
        carve_validation(np.zeros(3), 1.0, 0)


# ----------------------------------------------------------------- cache
def test_cache_reused_then_rebuilt_when_source_changes(mn_hdf5, monkeypatch):
    root, _ = mn_hdf5
    first = ModelNet40(root, "test")
    calls = []
    real = mn.read_hdf5_split
    monkeypatch.setattr(mn, "read_hdf5_split", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = ModelNet40(root, "test")
    assert calls == [] and torch.equal(_stack(first)[0], _stack(again)[0])
    # rewrite the test file with different points: the cache must not be served
    path = root / MN_HDF5 / "ply_data_test0.h5"
    with h5py.File(path, "r+") as f:
        f["data"][...] = f["data"][...] * 0.5
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = ModelNet40(root, "test")
    assert calls == [1]
    assert torch.allclose(_stack(changed)[0], _stack(first)[0] * 0.5)
    # the stale cache folder was removed
    assert len(list((root / "processed" / MN_HDF5).glob("test-*"))) == 1


def test_cache_rebuilt_when_pre_transform_changes(mn_hdf5):
    root, _ = mn_hdf5
    assert ModelNet40(root, "test")[0].pos.shape == (32, 3)
    assert ModelNet40(root, "test", pre_transform=SubsamplePoints(16))[0].pos.shape == (16, 3)
    assert ModelNet40(root, "test", pre_transform=SubsamplePoints(8))[0].pos.shape == (8, 3)
    assert ModelNet40(root, "test")[0].pos.shape == (32, 3)


def test_damaged_cache_is_rebuilt(mn_hdf5):
    root, ref = mn_hdf5
    ds = ModelNet40(root, "test")
    with open(ds.processed_paths[0], "wb") as f:
        f.write(b"not a torch file")
    again = ModelNet40(root, "test")
    np.testing.assert_array_equal(again[0].pos.numpy(), ref["test"]["pos"][0])


def test_force_reload(mn_hdf5, monkeypatch):
    root, _ = mn_hdf5
    ModelNet40(root, "test")
    calls = []
    real = mn.read_hdf5_split
    monkeypatch.setattr(mn, "read_hdf5_split", lambda *a, **k: calls.append(1) or real(*a, **k))
    ModelNet40(root, "test", force_reload=True)
    assert calls == [1]


def test_transform_does_not_modify_cached_samples(mn_hdf5):
    root, ref = mn_hdf5
    ds = ModelNet40(root, "test", transform=PCTScaleShift())
    for _ in range(3):
        for i in range(len(ds)):
            ds[i]
    raw = ModelNet40(root, "test")
    np.testing.assert_array_equal(raw[0].pos.numpy(), ref["test"]["pos"][0])
    assert not torch.equal(ds[0].pos, raw[0].pos)
    # and the stored tensors of the transformed dataset itself are intact
    np.testing.assert_array_equal(ds._data.pos[:32].numpy(), ref["test"]["pos"][0])


# ----------------------------------------------------------------- errors
def test_missing_folder_says_what_to_fetch(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        ModelNet40(tmp_path, "train")
    msg = str(info.value)
    assert "modelnet40_ply_hdf5_2048.zip" in msg and "https://" in msg
    assert str(tmp_path / MN_HDF5 / "shape_names.txt") in msg


def _h5(root):
    return root / MN_HDF5 / "ply_data_test0.h5"


def _rewrite(path, **changes):
    with h5py.File(path, "r") as f:
        keys = {k: f[k][()] for k in f}
    keys.update(changes)
    path.unlink()
    with h5py.File(path, "w") as f:
        for k, v in keys.items():
            if v is not None:
                f.create_dataset(k, data=v)


@pytest.mark.parametrize(
    "breakage, match",
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"garbage" * 100), "not a readable HDF5"),
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "HDF5"),
        (lambda p: _rewrite(p, label=None), "missing HDF5 key 'label'"),
        (lambda p: _rewrite(p, data=None), "missing HDF5 key 'data'"),
        (lambda p: _rewrite(p, data=np.zeros((5, 32, 2), np.float32)), r"shape \(5, 32, 2\)"),
        (lambda p: _rewrite(p, data=np.zeros((5, 32, 3), np.int32)), "dtype int32"),
        (lambda p: _rewrite(p, label=np.full((5, 1), 9, np.uint8)), "out of range"),
        (lambda p: _rewrite(p, label=np.full((5, 1), -1, np.int32)), "out of range"),
        (lambda p: _rewrite(p, label=np.full((5, 1), 0.5, np.float32)), "whole numbers"),
        (lambda p: _rewrite(p, label=np.zeros((4, 1), np.uint8)), "4 labels for 5 shapes"),
        (lambda p: _rewrite(p, label=np.zeros((5, 2), np.uint8)), r"shape \(5, 2\)"),
        (lambda p: _rewrite(p, data=np.full((5, 32, 3), np.nan, np.float32)), "non-finite"),
        (lambda p: _rewrite(p, data=np.full((5, 32, 3), np.inf, np.float32)), "non-finite"),
        (lambda p: _rewrite(p, data=np.zeros((0, 32, 3), np.float32),
                            label=np.zeros((0, 1), np.uint8)), "no points"),
    ],
)
def test_bad_hdf5_file(mn_hdf5, breakage, match):
    root, _ = mn_hdf5
    path = _h5(root)
    breakage(path)
    with pytest.raises(DataError, match=match) as info:
        ModelNet40(root, "test")
    assert str(path) in str(info.value)


def test_bad_normals_only_matter_when_asked(mn_hdf5):
    root, _ = mn_hdf5
    _rewrite(_h5(root), normal=np.zeros((5, 31, 3), np.float32))
    assert len(ModelNet40(root, "test")) == 5
    with pytest.raises(DataError, match="'normal'.*shape"):
        ModelNet40(root, "test", use_normals=True)


@pytest.mark.parametrize(
    "name, content, exc, match",
    [
        ("test_files.txt", None, DatasetNotFoundError, "missing test file list"),
        ("test_files.txt", "", DataError, "is empty"),
        ("test_files.txt", "\n  \n", DataError, "blank"),
        ("test_files.txt", "data/modelnet40_ply_hdf5_2048/ply_data_test7.h5\n",
         DatasetNotFoundError, "line 1 names"),
        ("shape_names.txt", None, DatasetNotFoundError, "missing class names"),
        ("shape_names.txt", "a\nb\na\n", DataError, "appears twice"),
        ("shape_names.txt", b"\xff\xfe\x00", DataError, "not UTF-8"),
        ("shape_names.txt", "airplane\n", DataError, "out of range"),
    ],
)
def test_bad_list_files(mn_hdf5, name, content, exc, match):
    root, _ = mn_hdf5
    path = root / MN_HDF5 / name
    if content is None:
        path.unlink()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(exc, match=match) as info:
        ModelNet40(root, "test")
    assert MN_HDF5 in str(info.value)


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "empty"),
        ("1,2,3,4,5,6\n1,2,3\n", "row 2 .* 3 fields"),
        ("1,2,3,4,5,6\n1,2,x,4,5,6\n", "'x', which is not a number"),
        ("1,2,3,4,5,6\nnan,2,3,4,5,6\n", "non-finite"),
        ("1,2,3,4,5,6,7\n1,2,3,4,5\n", "row 1 .* 7 fields"),
    ],
)
def test_bad_resampled_file(mn_resampled, content, match):
    root, ref = mn_resampled
    sid = ref["test"]["ids"][0]
    path = root / "modelnet40_normal_resampled" / sid.rsplit("_", 1)[0] / f"{sid}.txt"
    path.write_text(content)
    with pytest.raises(DataError, match=match) as info:
        ModelNet40(root, "test", format="resampled")
    assert str(path) in str(info.value)


def test_resampled_list_errors(mn_resampled):
    root, ref = mn_resampled
    folder = root / "modelnet40_normal_resampled"
    (folder / "modelnet40_test.txt").write_text("sofa_0001\n")
    with pytest.raises(DataError, match="does not start with a class name"):
        ModelNet40(root, "test", format="resampled")
    (folder / "modelnet40_test.txt").write_text("airplane_9999\n")
    with pytest.raises(DatasetNotFoundError, match="airplane_9999"):
        ModelNet40(root, "test", format="resampled")
    shutil.rmtree(folder / "airplane")
    with pytest.raises(DatasetNotFoundError):
        ModelNet40(root, "train", format="resampled")


def test_bench_data_script_runs(capsys):
    import runpy

    script = REPO_ROOT / "scripts" / "bench_data.py"
    mod = runpy.run_path(str(script), run_name="bench_data")
    assert mod["main"](["--shapes", "40", "--points", "64", "--batch-size", "4",
                        "--num-points", "32", "--batches", "2", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "| total per batch" in out and "4 x 32 points" in out
