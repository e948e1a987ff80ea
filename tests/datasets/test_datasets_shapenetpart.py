"""ShapeNetPart readers (text and HDF5), the category/part table, and bad inputs."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from pointea_testing import SN_HDF5, SN_TEXT, write_shapenet_hdf5, write_shapenet_text

from pointea.datasets import (
    CATEGORY_PARTS,
    NUM_PARTS,
    PART_NAMES,
    PART_TO_CATEGORY,
    SHAPENET_CATEGORIES,
    ShapeNetPart,
    part_label,
)
from pointea.errors import DataError, DatasetNotFoundError, InputError

CANONICAL = ["Airplane", "Bag", "Cap", "Car", "Chair", "Earphone", "Guitar", "Knife", "Lamp",
             "Laptop", "Motorbike", "Mug", "Pistol", "Rocket", "Skateboard", "Table"]


@pytest.fixture
def sn_text(tmp_path):
    return tmp_path, write_shapenet_text(tmp_path)


@pytest.fixture
def sn_hdf5(tmp_path):
    return tmp_path, write_shapenet_hdf5(tmp_path)


# ----------------------------------------------------------------- the table
def test_table_matches_the_published_ranges():
    assert list(SHAPENET_CATEGORIES) == CANONICAL
    ranges = {"Airplane": (0, 3), "Bag": (4, 5), "Cap": (6, 7), "Car": (8, 11),
              "Chair": (12, 15), "Earphone": (16, 18), "Guitar": (19, 21), "Knife": (22, 23),
              "Lamp": (24, 27), "Laptop": (28, 29), "Motorbike": (30, 35), "Mug": (36, 37),
              "Pistol": (38, 40), "Rocket": (41, 43), "Skateboard": (44, 46),
              "Table": (47, 49)}
    for i, name in enumerate(CANONICAL):
        lo, hi = ranges[name]
        assert CATEGORY_PARTS[i] == list(range(lo, hi + 1))
    assert NUM_PARTS == 50 and len(PART_NAMES) == 50 and len(PART_TO_CATEGORY) == 50
    assert SHAPENET_CATEGORIES["Airplane"] == "02691156"
    assert SHAPENET_CATEGORIES["Table"] == "04379243"
    assert len(set(SHAPENET_CATEGORIES.values())) == 16
    assert part_label(1) == "Airplane/wing" and part_label(49).startswith("Table/")
    with pytest.raises(InputError):
        part_label(50)


# ----------------------------------------------------------------- text format
def test_text_read_back_field_by_field(sn_text):
    root, ref = sn_text
    for split in ("train", "val", "test"):
        ds = ShapeNetPart(root, split, use_normals=True)
        assert len(ds) == len(ref[split])
        assert ds.categories == CANONICAL and ds.num_classes == 50
        for d, shape in zip(ds, ref[split], strict=True):
            t = shape["table"]
            assert d.pos.dtype == torch.float32 and d.y.dtype == torch.int64
            np.testing.assert_allclose(d.pos.numpy(), t[:, :3])
            np.testing.assert_allclose(d.x.numpy(), t[:, 3:6])
            np.testing.assert_array_equal(d.y.numpy(), t[:, 6].astype(np.int64))
            assert d.category.tolist() == [shape["category"]]


def test_trainval_is_train_plus_val(sn_text):
    root, ref = sn_text
    tv = ShapeNetPart(root)  # default split
    assert tv.split == "trainval" and len(tv) == len(ref["train"]) + len(ref["val"])
    assert ShapeNetPart(root, "test")[0].x is None


def test_category_filter(sn_text):
    root, ref = sn_text
    ds = ShapeNetPart(root, "train", categories=["chair", "Mug"])
    assert ds.selected_categories == ["Chair", "Mug"]
    assert {int(d.category) for d in ds} == {4, 11} and len(ds) == 6
    one = ShapeNetPart(root, "train", categories="Airplane")
    assert {int(d.category) for d in one} == {0}
    with pytest.raises(InputError, match="unknown ShapeNetPart category"):
        ShapeNetPart(root, "train", categories=["Sofa"])
    with pytest.raises(DataError, match="holds no shapes"):
        ShapeNetPart(root, "train", categories=["Bag"])


def test_root_may_be_the_archive_folder(sn_text):
    root, _ = sn_text
    assert len(ShapeNetPart(root / SN_TEXT, "test")) == 6


def _first_file(root, split="test"):
    folder = root / SN_TEXT
    entry = json.loads((folder / "train_test_split" /
                        f"shuffled_{split}_file_list.json").read_text())[0]
    _, synset, token = entry.split("/")
    return folder / synset / f"{token}.txt"


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "empty"),
        ("0 0 0 0 0 1 1\n0 0 0 0 1\n", "row 2 .* 5 fields"),
        ("0 0 0 0 0 1 1\n0 0 0 0 0 1 1 1\n", "row 2 .* 8 fields"),
        ("0 0 0 0 0 1 1\n0 0 0 0 0 1 wing\n", "'wing'"),
        ("0 0 0 0 0 1 1\nnan 0 0 0 0 1 1\n", "non-finite"),
        ("0 0 0 0 0 1 1\ninf 0 0 0 0 1 1\n", "non-finite"),
        ("0 0 0 0 0 1 1.5\n", "whole numbers"),
        ("0 0 0 0 0 1 50\n", "out of range"),
        ("0 0 0 0 0 1 -1\n", "out of range"),
    ],
)
def test_bad_point_file(sn_text, content, match):
    root, _ = sn_text
    path = _first_file(root)
    path.write_text(content)
    with pytest.raises(DataError, match=match) as info:
        ShapeNetPart(root, "test")
    assert str(path) in str(info.value)


def test_part_of_another_category_is_refused(sn_text):
    root, ref = sn_text
    path = _first_file(root)
    cat = ref["test"][0]["category"]
    wrong = CATEGORY_PARTS[(cat + 1) % 16][0]
    path.write_text(f"0 0 0 0 0 1 {CATEGORY_PARTS[cat][0]}\n0 0 0 0 0 1 {wrong}\n")
    with pytest.raises(DataError, match=f"part id {wrong} belongs to") as info:
        ShapeNetPart(root, "test")
    assert CANONICAL[cat] in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "empty"),
        ("[\"shape_data/02691156/x\"", "malformed JSON"),
        ("{\"a\": 1}", "JSON list of strings, found a dict"),
        ("[1, 2]", "entry 0 .* must be a string"),
        ("[\"noslash\"]", "not 'shape_data/<synset>/<token>'"),
        ("[\"shape_data/99999999/abc\"]", "synset 99999999 is not listed"),
        ("[\"shape_data/02691156/doesnotexist\"]", "does not exist"),
        ("[" * 5000 + "]" * 5000, "JSON"),
    ],
)
def test_bad_split_list(sn_text, content, match):
    root, _ = sn_text
    path = root / SN_TEXT / "train_test_split" / "shuffled_test_file_list.json"
    path.write_text(content)
    with pytest.raises(DataError, match=match) as info:
        ShapeNetPart(root, "test")
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "content, match",
    [
        ("Airplane\t02691156\nChair\n", "line 2 must be"),
        ("Airplane\t02691157\n", "has synset 02691156"),
        ("Plane\t02691156\n", "unknown category 'Plane'"),
    ],
)
def test_bad_category_table(sn_text, content, match):
    root, _ = sn_text
    path = root / SN_TEXT / "synsetoffset2category.txt"
    path.write_text(content)
    with pytest.raises(DataError, match=match) as info:
        ShapeNetPart(root, "test")
    assert str(path) in str(info.value)


def test_missing_pieces(sn_text, tmp_path_factory):
    root, _ = sn_text
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(DatasetNotFoundError, match="shapenetcore_partanno.*zip"):
        ShapeNetPart(empty)
    (root / SN_TEXT / "train_test_split" / "shuffled_val_file_list.json").unlink()
    with pytest.raises(DatasetNotFoundError, match="shuffled_val_file_list.json"):
        ShapeNetPart(root, "trainval")
    _first_file(root).unlink()
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        ShapeNetPart(root, "test")


# ----------------------------------------------------------------- HDF5 format
def test_hdf5_read_back_field_by_field(sn_hdf5):
    root, ref = sn_hdf5
    for split in ("train", "val", "test"):
        ds = ShapeNetPart(root, split, format="hdf5")
        assert len(ds) == len(ref[split]["label"])
        for i, d in enumerate(ds):
            np.testing.assert_array_equal(d.pos.numpy(), ref[split]["pos"][i])
            np.testing.assert_array_equal(d.y.numpy(), ref[split]["pid"][i])
            assert d.category.tolist() == [int(ref[split]["label"][i])]
    assert len(ShapeNetPart(root, "trainval", format="hdf5")) == 9


def test_hdf5_published_folder_name_and_missing_lists(tmp_path):
    ref = write_shapenet_hdf5(tmp_path, folder_name="hdf5_data", with_lists=False)
    ds = ShapeNetPart(tmp_path, "train", format="hdf5")
    np.testing.assert_array_equal(ds[4].pos.numpy(), ref["train"]["pos"][4])


def test_hdf5_category_filter(sn_hdf5):
    root, ref = sn_hdf5
    cats = sorted({int(c) for c in ref["train"]["label"]})[:1]
    ds = ShapeNetPart(root, "train", format="hdf5", categories=[CANONICAL[cats[0]]])
    assert len(ds) == int((ref["train"]["label"] == cats[0]).sum())


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
    "change, match",
    [
        (dict(pid=None), "missing HDF5 key 'pid'"),
        (dict(pid=np.zeros((3, 23), np.uint8)), r"'pid' has shape \(3, 23\)"),
        (dict(pid=np.full((3, 24), 60, np.uint8)), "out of range"),
        (dict(label=np.full((3, 1), 16, np.uint8)), "out of range"),
        (dict(data=np.full((3, 24, 3), np.nan, np.float32)), "non-finite"),
    ],
)
def test_hdf5_bad_keys(sn_hdf5, change, match):
    root, _ = sn_hdf5
    path = root / SN_HDF5 / "ply_data_test0.h5"
    _rewrite(path, **change)
    with pytest.raises(DataError, match=match) as info:
        ShapeNetPart(root, "test", format="hdf5")
    assert str(path) in str(info.value)


def test_hdf5_pid_inconsistent_with_label(sn_hdf5):
    root, ref = sn_hdf5
    path = root / SN_HDF5 / "ply_data_test0.h5"
    label = np.zeros((3, 1), np.uint8)  # all Airplane
    pid = np.full((3, 24), 47, np.uint8)  # Table top
    _rewrite(path, label=label, pid=pid)
    with pytest.raises(DataError, match="part id 47 belongs to Table/top, not to category "
                                        "Airplane"):
        ShapeNetPart(root, "test", format="hdf5")


def test_hdf5_normals_requested_but_absent(sn_hdf5):
    root, _ = sn_hdf5
    with pytest.raises(DataError, match="missing HDF5 key 'normal'"):
        ShapeNetPart(root, "test", format="hdf5", use_normals=True)


def test_crlf_and_trailing_whitespace_are_read(sn_text):
    root, ref = sn_text
    path = _first_file(root)
    cat = ref["test"][0]["category"]
    part = CATEGORY_PARTS[cat][-1]
    path.write_bytes(f"0.5 0 0 0 0 1 {part}.000000  \r\n1 2 3 0 1 0 {part}\t\r\n\r\n".encode())
    d = ShapeNetPart(root, "test")[0]
    assert d.pos.tolist() == [[0.5, 0, 0], [1, 2, 3]] and d.y.tolist() == [part, part]


def test_category_index_accepts_every_form():
    from pointea.datasets.shapenetpart import category_index

    names = list(SHAPENET_CATEGORIES)
    for i, (name, synset) in enumerate(SHAPENET_CATEGORIES.items()):
        assert category_index(i) == i  # int
        assert category_index(np.int64(i)) == i  # numpy int
        assert category_index(str(i)) == i  # digit string
        assert category_index(f" {i} ") == i
        assert category_index(name) == i and category_index(name.upper()) == i  # name
        assert category_index(synset) == i  # synset, leading zero kept
    assert names[category_index("03001627")] == "Chair"
    for bad in (-1, 16, "16", "Sofa", "", True, "0300162"):
        with pytest.raises(InputError, match="category"):
            category_index(bad)
