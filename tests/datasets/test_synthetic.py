"""The offline stand-ins: published formats, determinism, variation, baseline, CLI."""

from __future__ import annotations

import json
import time

import h5py
import numpy as np
import pytest
import torch

from pointea.cli.data import main as data_main
from pointea.datasets import (
    CATEGORY_PARTS,
    SHAPENET_CATEGORIES,
    ModelNet40,
    ShapeNetPart,
    ensure_synthetic,
    trivial_baseline_accuracy,
)
from pointea.datasets import synthetic as syn
from pointea.errors import InputError

CLS = "modelnet40_ply_hdf5_2048"
SEG = "shapenetcore_partanno_segmentation_benchmark_v0_normal"
SMALL_CLS = dict(train_per_class=3, test_per_class=2, points=128)
SMALL_SEG = dict(train_per_category=3, val_per_category=1, test_per_category=2, points=128)


@pytest.fixture(scope="module")
def cls_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn_cls")
    syn.write_classification(root, **SMALL_CLS)
    return root


@pytest.fixture(scope="module")
def seg_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn_seg")
    syn.write_part_segmentation(root, **SMALL_SEG)
    return root


def test_classification_files_follow_the_published_layout(cls_root):
    folder = cls_root / CLS
    names = (folder / "shape_names.txt").read_text().split()
    assert len(names) >= 10 and names[:3] == ["sphere", "cube", "cylinder"]
    for split in ("train", "test"):
        lines = (folder / f"{split}_files.txt").read_text().split()
        assert lines and all(ln.startswith(f"data/{CLS}/ply_data_{split}") for ln in lines)
    with h5py.File(folder / "ply_data_train0.h5") as f:
        assert set(f) == {"data", "label", "normal", "faceId"}
        assert f["data"].dtype == np.float32 and f["data"].shape[1:] == (128, 3)
        assert f["label"].dtype == np.uint8 and f["label"].shape[1] == 1
        nrm = f["normal"][()]
        np.testing.assert_allclose(np.linalg.norm(nrm, axis=-1), 1.0, atol=1e-4)
        assert np.linalg.norm(f["data"][()], axis=-1).max() <= 1.0 + 1e-5


def test_classification_read_by_the_reader(cls_root):
    train = ModelNet40(cls_root, "trainval")
    test = ModelNet40(cls_root, "test", use_normals=True)
    assert train.num_classes == 12 and len(train) == 36 and len(test) == 24
    assert np.bincount([int(d.y) for d in test]).tolist() == [2] * 12
    d = test[0]
    assert d.pos.shape == (128, 3) and d.x.shape == (128, 3)
    # centred, unit sphere
    assert float(d.pos.norm(dim=1).max()) == pytest.approx(1.0, abs=0.05)
    assert float(d.pos.mean(0).abs().max()) < 0.1


def test_intra_class_variation(cls_root):
    ds = ModelNet40(cls_root, "trainval")
    for c in range(ds.num_classes):
        ext = np.stack([np.sort((d.pos.max(0).values - d.pos.min(0).values).numpy())
                        for d in ds if int(d.y) == c])
        assert ext.std(0).max() > 0.01, ds.class_names[c]


def test_deterministic_given_seed(tmp_path):
    def arrays(root):
        with h5py.File(root / CLS / "ply_data_test0.h5") as f:
            return f["data"][()], f["label"][()]

    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        syn.write_classification(tmp_path / name, seed=seed, **SMALL_CLS)
    a, b, c = (arrays(tmp_path / n) for n in "abc")
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    syn.write_part_segmentation(tmp_path / "s1", **SMALL_SEG)
    syn.write_part_segmentation(tmp_path / "s2", **SMALL_SEG)
    lst = "train_test_split/shuffled_train_file_list.json"
    assert (tmp_path / "s1" / SEG / lst).read_text() == (tmp_path / "s2" / SEG / lst).read_text()


def test_part_segmentation_layout_and_labels(seg_root):
    folder = seg_root / SEG
    table = (folder / "synsetoffset2category.txt").read_text().splitlines()
    assert table[0] == "Airplane\t02691156" and len(table) == 16
    entries = json.loads((folder / "train_test_split/shuffled_train_file_list.json").read_text())
    assert all(e.startswith("shape_data/") for e in entries)
    ds = ShapeNetPart(seg_root, "trainval", use_normals=True)
    cats = {int(d.category) for d in ds}
    assert len(cats) >= 4
    assert {list(SHAPENET_CATEGORIES)[c] for c in cats} == set(syn.SEGMENTATION_CATEGORIES)
    for d in ds:
        parts = set(d.y.tolist())
        assert parts <= set(CATEGORY_PARTS[int(d.category)])
        assert len(parts) >= 2  # made of its named parts
        torch.testing.assert_close(d.x.norm(dim=1), torch.ones(len(d.x)), atol=1e-4, rtol=0)
    assert len(ShapeNetPart(seg_root, "val")) == 5 and len(ShapeNetPart(seg_root, "test")) == 10
    only = ShapeNetPart(seg_root, "test", categories=["Mug"])
    assert {tuple(sorted(set(d.y.tolist()))) for d in only} == {(36, 37)}


def test_ensure_synthetic_generates_once_and_regenerates_on_change(tmp_path, monkeypatch):
    root = ensure_synthetic("modelnet40", tmp_path, seed=0, **SMALL_CLS)
    assert root == tmp_path and (tmp_path / CLS / syn.MARKER).is_file()
    calls = []
    real = syn.write_classification
    # ensure_synthetic lives in synthetic/cache.py and calls the writer from there
    monkeypatch.setattr(syn.cache, "write_classification",
                        lambda *a, **k: calls.append(k) or real(*a, **k))
    ensure_synthetic("modelnet40", tmp_path, seed=0, **SMALL_CLS)
    assert calls == []
    ensure_synthetic("modelnet40", tmp_path, seed=1, **SMALL_CLS)
    assert len(calls) == 1
    (tmp_path / CLS / syn.MARKER).unlink()  # e.g. an older, interrupted folder
    ensure_synthetic("modelnet40", tmp_path, seed=1, **SMALL_CLS)
    assert len(calls) == 2
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == [f".{CLS}.lock"]  # no temp folders left behind
    with pytest.raises(InputError, match="task"):
        ensure_synthetic("detection", tmp_path)
    with pytest.raises(InputError, match="unknown size"):
        ensure_synthetic("modelnet40", tmp_path, train_per_category=3)


def test_writers_refuse_to_overwrite_by_accident(cls_root):
    from pointea.errors import DataError

    with pytest.raises(DataError, match="already exists"):
        syn.write_classification(cls_root, **SMALL_CLS)
    with pytest.raises(InputError):
        syn.write_classification(cls_root, num_classes=13)
    with pytest.raises(InputError):
        syn.write_part_segmentation(cls_root, categories=["Sofa"])


def test_trivial_baseline_is_above_chance_but_far_from_solved(tmp_path):
    syn.write_classification(tmp_path, train_per_class=20, test_per_class=10, points=256)
    acc = trivial_baseline_accuracy(ModelNet40(tmp_path, "trainval"), ModelNet40(tmp_path, "test"))
    assert 1 / 12 < acc < 0.75


def test_trivial_baseline_on_a_separable_toy():
    from torch_geometric.data import Data

    def make(n):
        return [Data(pos=torch.rand(50, 3) * (1 + 3 * c), y=torch.tensor([c]))
                for c in range(3) for _ in range(n)]

    assert trivial_baseline_accuracy(make(5), make(3)) == 1.0
    with pytest.raises(InputError):
        trivial_baseline_accuracy([], make(1))


@pytest.mark.slow
def test_default_sizes_generate_in_seconds(tmp_path):
    t = time.perf_counter()
    ensure_synthetic("modelnet40", tmp_path)
    ensure_synthetic("shapenetpart", tmp_path)
    assert time.perf_counter() - t < 60
    train = ModelNet40(tmp_path, "train")
    assert train.num_classes == 12 and len(train) + len(ModelNet40(tmp_path, "val")) == 960
    assert len(ShapeNetPart(tmp_path, "trainval")) == 5 * 70


@pytest.mark.e2e
def test_cli_synthetic_and_check(tmp_path, capsys):
    args = ["--train-per-class", "2", "--test-per-class", "1", "--points", "64"]
    assert data_main(["synthetic", "--task", "modelnet40", "--root", str(tmp_path), *args]) == 0
    assert data_main(["synthetic", "--task", "shapenetpart", "--root", str(tmp_path),
                      "--train-per-category", "2", "--val-per-category", "1",
                      "--test-per-category", "1", "--points", "64"]) == 0
    capsys.readouterr()
    assert data_main(["check", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("ok") == 2 and "24 shapes" in out and "Airplane 2" in out
    (tmp_path / CLS / "ply_data_test0.h5").write_bytes(b"broken")
    assert data_main(["check", str(tmp_path)]) == 1
    assert "ply_data_test0.h5: not a readable HDF5" in capsys.readouterr().err
    assert data_main(["check", str(tmp_path / "nothing")]) == 2


def _ensure_in_process(root, seed):
    from pointea.datasets import ensure_synthetic as ens

    ens("modelnet40", root, seed=seed, train_per_class=2, test_per_class=1, points=64)
    with h5py.File(root / CLS / "ply_data_test0.h5") as f:
        return f["data"][()].sum().item()


@pytest.mark.slow
def test_concurrent_callers_generate_once(tmp_path):
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        sums = pool.starmap(_ensure_in_process, [(tmp_path, 5), (tmp_path, 5)])
    assert sums[0] == sums[1]
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1


# ------------------------------------------------------------------------ custom sets
def _marker(root, folder=SEG):
    return json.loads((root / folder / syn.MARKER).read_text())


@pytest.mark.e2e
def test_custom_set_made_by_the_cli_is_used_not_regenerated(tmp_path, capsys):
    # `pointea-data synthetic` with custom sizes, then what `pointea-seg --synthetic
    # --data-root X` does: ensure_synthetic(task, root=X) with no sizes and no seed
    assert data_main(["synthetic", "--task", "shapenetpart", "--root", str(tmp_path),
                      "--seed", "3", "--train-per-category", "2", "--val-per-category", "1",
                      "--test-per-category", "1", "--points", "64"]) == 0
    before = _marker(tmp_path)
    files = sorted(p.name for p in (tmp_path / SEG / "02691156").iterdir())
    capsys.readouterr()
    assert ensure_synthetic("shapenetpart", root=tmp_path) == tmp_path
    assert _marker(tmp_path) == before and before["seed"] == 3
    assert sorted(p.name for p in (tmp_path / SEG / "02691156").iterdir()) == files
    err = capsys.readouterr().err
    assert "using the existing synthetic shapenetpart set" in err and "seed 3" in err
    assert len(ShapeNetPart(tmp_path, "train")) == 5 * 2
    # the CLI run again without sizes keeps it too, and reports the set's own seed
    assert data_main(["synthetic", "--task", "shapenetpart", "--root", str(tmp_path)]) == 0
    assert _marker(tmp_path) == before and "(seed 3)" in capsys.readouterr().out


def test_default_sized_set_is_reused_silently(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(syn.cache, "synthetic_defaults", lambda task: dict(
        syn.synthetic_defaults(task), **SMALL_CLS))
    ensure_synthetic("modelnet40", tmp_path)
    assert "generating synthetic modelnet40" in capsys.readouterr().err
    ensure_synthetic("modelnet40", tmp_path)
    assert capsys.readouterr().err == ""


def test_stale_generator_version_is_regenerated_with_its_sizes(tmp_path, capsys):
    ensure_synthetic("modelnet40", tmp_path, seed=4, **SMALL_CLS)
    marker = _marker(tmp_path, CLS)
    marker["version"] = syn.GENERATOR_VERSION - 1
    (tmp_path / CLS / syn.MARKER).write_text(json.dumps(marker))
    capsys.readouterr()
    ensure_synthetic("modelnet40", tmp_path)
    err = capsys.readouterr().err
    assert f"generator version {syn.GENERATOR_VERSION - 1}" in err and "regenerating" in err
    fresh = _marker(tmp_path, CLS)
    assert fresh["version"] == syn.GENERATOR_VERSION
    assert fresh["seed"] == 4 and fresh["params"] == marker["params"]


def test_asking_for_other_sizes_regenerates_and_says_so(tmp_path, capsys):
    ensure_synthetic("modelnet40", tmp_path, seed=2, **SMALL_CLS)
    capsys.readouterr()
    ensure_synthetic("modelnet40", tmp_path, test_per_class=1)
    assert "regenerating as asked" in capsys.readouterr().err
    m = _marker(tmp_path, CLS)
    assert m["seed"] == 2 and m["params"] == {**SMALL_CLS, "num_classes": 12, "test_per_class": 1}


def test_folder_without_marker_is_moved_aside_never_deleted(tmp_path, capsys):
    own = tmp_path / CLS
    own.mkdir()
    (own / "mine.txt").write_text("user data")
    ensure_synthetic("modelnet40", tmp_path, **SMALL_CLS)
    aside = [p for p in tmp_path.iterdir() if p.name.startswith(f"{CLS}.unmarked-")]
    assert len(aside) == 1 and (aside[0] / "mine.txt").read_text() == "user data"
    assert "nothing deleted" in capsys.readouterr().err
    assert (tmp_path / CLS / syn.MARKER).is_file()


def test_unwritable_root_is_one_line_not_a_traceback(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert data_main(["synthetic", "--task", "modelnet40", "--root", str(blocker / "sub")]) == 1
    err = capsys.readouterr().err
    assert "cannot write the synthetic modelnet40 set" in err and "Traceback" not in err
