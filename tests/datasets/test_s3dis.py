"""S3DIS reader: the published layout read exactly, splits, cache, bad files, fuzzing;
the procedural rooms written in that layout."""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pointea.datasets.s3dis import (
    CLASSES,
    FOLDER,
    S3DIS,
    S3DISRepairWarning,
    parse_annotation,
    read_room,
    room_split,
)
from pointea.datasets.synthetic.rooms import generate_room, write_rooms
from pointea.errors import DataError, DatasetNotFoundError

FUZZ = settings(
    max_examples=int(os.environ.get("POINTEA_FUZZ_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# one room, written by hand as the published files are: "x y z r g b" rows
ROOM = {
    "ceiling_1.txt": "1.000 2.000 3.000 255 255 250\n1.500 2.500 3.000 250 251 252\n",
    "wall_1.txt": "0.000 0.000 1.000 100 110 120\n",
    "wall_2.txt": "-15.609 39.505 2.214 71 64 54\n",
    "stairs_1.txt": "0.5 0.5 0.5 1 2 3\n",
    "chair_10.txt": "4.25 5.125 0.5 9 8 7\n",
}


def write_room(folder: Path, area: int, room: str, files: dict[str, str] = ROOM) -> Path:
    ann = folder / FOLDER / f"Area_{area}" / room / "Annotations"
    ann.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (ann / name).write_text(text)
    (ann.parent / f"{room}.txt").write_text("".join(files.values()))
    return ann.parent


@pytest.fixture
def areas(tmp_path):
    """Six areas, three rooms each (office_1..3), the same tiny room everywhere."""
    for a in range(1, 7):
        for r in range(1, 4):
            write_room(tmp_path, a, f"office_{r}")
    return tmp_path


def test_read_room_is_format_exact(tmp_path):
    room = read_room(write_room(tmp_path, 1, "office_1"))
    # files are read in name order: ceiling_1, chair_10, stairs_1, wall_1, wall_2
    np.testing.assert_array_equal(
        room["xyz"],
        np.array(
            [[1, 2, 3], [1.5, 2.5, 3], [4.25, 5.125, 0.5], [0.5, 0.5, 0.5], [0, 0, 1]]
            + [[-15.609, 39.505, 2.214]],
            dtype=np.float32,
        ),
    )
    assert room["rgb"].dtype == np.uint8 and room["rgb"][0].tolist() == [255, 255, 250]
    names = [CLASSES[i] for i in room["label"]]
    assert names == ["ceiling", "ceiling", "chair", "clutter", "wall", "wall"]  # stairs->clutter
    assert room["instance"].tolist() == [0, 0, 1, 2, 3, 4]


# The four corrupted rows of the published releases. The hallway_6 row is the release's
# whole line; for the other three the corrupted number is the release's, byte for byte,
# and the other fields of the row are stand-ins. Each is written between clean rows, with
# the values the public loaders' repair gives.
RELEASE_ROWS = {
    # Stanford3dDataset_v1.2_Aligned_Version/Area_5/hallway_6/Annotations/ceiling_1.txt
    # line 180389: a NUL where the space between red and green belongs
    "hallway_6": (
        b"22.350 6.692 3.048 185\x00187 182",
        [22.35, 6.692, 3.048, 185, 187, 182],
        "0x00",
    ),
    # Stanford3dDataset_v1.2 (not aligned) Area_5/office_19/Annotations/ceiling_1.txt
    # line 323474: a 0x10 in place of a digit of the blue value
    "office_19": (
        b"17.521 9.164 3.221 103 102 103.0\x100000",
        [17.521, 9.164, 3.221, 103, 102, 103],
        "0x10",
    ),
    # room files read by pointea-predict: Area_2/auditorium_1/auditorium_1.txt line 18956
    # and Area_3/hallway_2/hallway_2.txt line 20097
    "auditorium_1": (b"179.\x1000000 10.5 2.1 90 91 92", [179.0, 10.5, 2.1, 90, 91, 92], "0x10"),
    "hallway_2": (b"-6.2\x162 -9.1 0.5 1 2 3", [-6.22, -9.1, 0.5, 1, 2, 3], "0x16"),
}
CLEAN = b"1.000 2.000 3.000 10 20 30\n"


def _release_file(path: Path, row: bytes) -> Path:
    path.write_bytes(CLEAN + CLEAN + row + b"\n" + CLEAN)
    return path


@pytest.mark.parametrize("name", sorted(RELEASE_ROWS))
def test_release_rows_are_repaired_in_annotations_with_one_warning(tmp_path, name):
    row, want, byte = RELEASE_ROWS[name]
    path = _release_file(tmp_path / "ceiling_1.txt", row)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = parse_annotation(path)
    assert [w.category for w in caught] == [S3DISRepairWarning]
    assert re.search(rf"ceiling_1.txt: line 3 .*{byte}", str(caught[0].message))
    assert table.shape == (4, 6)
    np.testing.assert_allclose(table[2], np.array(want, dtype=np.float32))
    np.testing.assert_array_equal(table[[0, 1, 3]], [[1, 2, 3, 10, 20, 30]] * 3)


@pytest.mark.parametrize("name", sorted(RELEASE_ROWS))
def test_release_rows_are_repaired_in_scene_files_by_the_same_rule(tmp_path, name):
    from pointea.inference.scene_files import read_scene
    from pointea.io.tables import TableRepairWarning

    row, want, byte = RELEASE_ROWS[name]
    path = _release_file(tmp_path / f"{name}.txt", row)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cloud = read_scene(path)
    repairs = [w for w in caught if issubclass(w.category, TableRepairWarning)]
    assert len(repairs) == 1
    assert re.search(rf"{name}.txt: line 3 .*{byte}", str(repairs[0].message))
    np.testing.assert_allclose(cloud.points[2], np.array(want[:3]), rtol=1e-6)
    np.testing.assert_allclose(cloud.colors[2] * 255, np.array(want[3:]), rtol=1e-6)


def test_rows_that_no_repair_fits_still_name_the_line(tmp_path):
    path = tmp_path / "wall_1.txt"
    path.write_bytes(CLEAN + b"1.0 2.0 \x10 3.0 4 5 6 7\n")
    with pytest.raises(DataError, match="row 2"):
        parse_annotation(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1 2 3 4 5 6\n1 2 3 4 5\n", "row 2 .* 5 fields, expected 6"),
        ("1 2 3 4 5 6\n1 2 x 4 5 6\n", "row 2 .*'x'"),
        ("1 2 nan 4 5 6\n", "non-finite"),
        ("1 2 3 4 5 300\n", "line 1: colour .* outside 0..255"),
        ("", "empty"),
        ("1 2 3 4 5 6 7\n", "row 1 .* 7 fields, expected 6"),
    ],
)
def test_bad_rows_raise_data_error_naming_the_file(tmp_path, text, match):
    path = tmp_path / "wall_1.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=match) as info:
        parse_annotation(path)
    assert str(path) in str(info.value)


def test_unknown_class_and_empty_room_are_data_errors(tmp_path):
    room = write_room(tmp_path, 1, "office_1", {"lamp_1.txt": "1 2 3 4 5 6\n"})
    with pytest.raises(DataError, match="lamp_1.txt: .*known class"):
        read_room(room)
    empty = tmp_path / "x" / "Area_1" / "office_2" / "Annotations"
    empty.mkdir(parents=True)
    with pytest.raises(DataError, match="empty room"):
        read_room(empty.parent)
    with pytest.raises(DataError, match="no Annotations"):
        read_room(tmp_path / "x" / "Area_1")


def test_missing_dataset_says_where_to_get_it_and_where_to_put_it(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        S3DIS(tmp_path)
    msg = str(info.value)
    assert "buildingparser.stanford.edu" in msg and str(tmp_path / FOLDER / "Area_1") in msg


def test_area5_split_and_validation_never_from_the_test_area(areas):
    folder = areas / FOLDER
    test = room_split(folder, "test", 5)
    assert {p.parent.name for p in test} == {"Area_5"} and len(test) == 3
    train = room_split(folder, "train", 5, val_fraction=0.2)
    val = room_split(folder, "val", 5, val_fraction=0.2)
    assert len(train) + len(val) == 15 and not set(train) & set(val)
    assert len(val) == 3 and all(p.parent.name != "Area_5" for p in train + val)
    assert set(room_split(folder, "trainval", 5)) == set(train) | set(val)


def test_six_fold_cross_validation_tests_every_room_once(areas):
    folder = areas / FOLDER
    tested = [p for k in range(1, 7) for p in room_split(folder, "test", k)]
    assert len(tested) == len(set(tested)) == 18
    for k in range(1, 7):
        train = room_split(folder, "trainval", k)
        assert all(p.parent.name != f"Area_{k}" for p in train)
    with pytest.raises(DataError, match="test_area"):
        room_split(folder, "test", 7)


def test_dataset_items_and_cache_follow_the_source(areas):
    ds = S3DIS(areas, "test")
    item = ds[0]
    assert item.room == "Area_5/office_1" and item.pos.shape == (6, 3) and item.y.shape == (6,)
    cache = areas / "processed" / "s3dis" / "Area_5" / "office_1.npz"
    assert cache.is_file()
    # a changed source is re-read, never served stale
    wall = areas / FOLDER / "Area_5" / "office_1" / "Annotations" / "wall_1.txt"
    wall.write_text("0 0 1 1 1 1\n9 9 9 1 1 1\n")
    assert ds[0].pos.shape == (7, 3)
    assert ds.class_counts().sum() == 3 * 6 + 1


def test_cache_is_used_when_sources_are_unchanged(areas, monkeypatch):
    ds = S3DIS(areas, "test")
    ds[0]
    import pointea.datasets.s3dis as mod

    def fail(*_):
        raise AssertionError("re-parsed although the cache is fresh")

    monkeypatch.setattr(mod, "read_room", fail)
    assert ds[0].pos.shape == (6, 3)


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_annotation_bytes_give_rows_or_a_data_error(tmp_path, blob):
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        path = Path(d) / "wall_1.txt"
        path.write_bytes(blob)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", S3DISRepairWarning)
                table = parse_annotation(path)
        except DataError as exc:
            assert str(path) in str(exc)
            return
        assert table.dtype == np.float32 and table.shape[1] == 6 and np.isfinite(table).all()


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.floats(-50, 50, allow_nan=False, width=32),
            st.floats(-50, 50, allow_nan=False, width=32),
            st.floats(-5, 5, allow_nan=False, width=32),
            st.integers(0, 255),
            st.integers(0, 255),
            st.integers(0, 255),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_fuzz_valid_rows_round_trip(tmp_path, rows):
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        path = Path(d) / "table_1.txt"
        path.write_text(
            "".join(f"{x:.3f} {y:.3f} {z:.3f} {r} {g} {b}\n" for x, y, z, r, g, b in rows)
        )
        table = parse_annotation(path)
        want = np.array(
            [[round(x, 3), round(y, 3), round(z, 3), r, g, b] for x, y, z, r, g, b in rows]
        )
        np.testing.assert_allclose(table, want.astype(np.float32), atol=1e-3)


def test_synthetic_rooms_are_deterministic_and_read_by_the_reader(tmp_path):
    a = write_rooms(tmp_path / "a", rooms_per_area=1, density=20, seed=3)
    b = write_rooms(tmp_path / "b", rooms_per_area=1, density=20, seed=3)
    fa = sorted(p.relative_to(a) for p in a.rglob("*.txt"))
    assert fa == sorted(p.relative_to(b) for p in b.rglob("*.txt"))
    for rel in fa:
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    ds = S3DIS(tmp_path / "a", "trainval", cache=False)
    labels = np.concatenate([ds.raw(i)["label"] for i in range(len(ds))])
    assert len(ds) == 5 and labels.size > 1000
    present = {CLASSES[i] for i in np.unique(labels)}
    assert {"ceiling", "floor", "wall", "door", "window", "table", "chair", "clutter"} <= present
    # the room file holds every annotated point
    room = a / "Area_1" / "office_1"
    assert len((room / "office_1.txt").read_text().splitlines()) == len(read_room(room)["label"])
    # same arguments: reused; different ones: refused without overwrite
    assert write_rooms(tmp_path / "a", rooms_per_area=1, density=20, seed=3) == a
    with pytest.raises(ValueError, match="overwrite"):
        write_rooms(tmp_path / "a", rooms_per_area=1, density=20, seed=4)


def test_generated_room_classes_and_geometry():
    objs = generate_room(np.random.default_rng(0), "conferenceRoom", density=40)
    classes = {c for c, _, _ in objs}
    assert {"floor", "ceiling", "wall", "table", "chair", "bookcase", "board"} <= classes
    floor = np.concatenate([p for c, p, _ in objs if c == "floor"])
    ceiling = np.concatenate([p for c, p, _ in objs if c == "ceiling"])
    assert abs(floor[:, 2].mean()) < 0.01 and 2.6 < ceiling[:, 2].mean() < 3.4
    assert all(rgb.dtype == np.uint8 and len(p) == len(rgb) for _, p, rgb in objs)


def _release_layout(root: Path) -> Path:
    """Six areas in the release's layout with every known quirk (module docstring)."""
    for a in range(1, 7):
        for r in (1, 2):
            write_room(root, a, f"office_{r}")
        (root / FOLDER / f"Area_{a}" / f"Area_{a}_alignmentAngle.txt").write_text(
            "## Global alignment angle per disjoint space in Area_{a} ##\n\noffice_1 0\n"
        )
        (root / FOLDER / f"Area_{a}" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    # Area_5/hallway_6: the NUL row
    hallway = write_room(root, 5, "hallway_6")
    _release_file(hallway / "Annotations" / "ceiling_1.txt", RELEASE_ROWS["hallway_6"][0])
    # Area_5/office_36: wall_3.txt and its byte-identical copy "wall_3 (1).txt"
    office = write_room(root, 5, "office_36")
    wall = b"0.100 0.200 1.000 50 60 70\n0.100 0.300 1.500 51 61 71\n"
    (office / "Annotations" / "wall_3.txt").write_bytes(wall)
    (office / "Annotations" / "wall_3 (1).txt").write_bytes(wall)
    (office / "Annotations" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    # Area_6/copyRoom_1 with its room file named copy_Room_1.txt
    copy = write_room(root, 6, "copyRoom_1")
    (copy / "copyRoom_1.txt").rename(copy / "copy_Room_1.txt")
    # Area_2/auditorium_1: a room file with a control byte inside a number (not read)
    audi = write_room(root, 2, "auditorium_1")
    _release_file(audi / "auditorium_1.txt", RELEASE_ROWS["auditorium_1"][0])
    return root


def test_the_release_layout_with_every_quirk_loads_with_one_warning_per_repair(tmp_path):
    root = _release_layout(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = {s: S3DIS(root, s, test_area=5, val_fraction=0.2) for s in ("train", "val")}
        splits["test"] = S3DIS(root, "test", test_area=5)
        rooms = {s: [d.room_name(i) for i in range(len(d))] for s, d in splits.items()}
        items = {s: [d[i] for i in range(len(d))] for s, d in splits.items()}
    messages = [str(w.message) for w in caught if w.category is S3DISRepairWarning]
    assert len(messages) == 2, messages
    assert sum("hallway_6/Annotations/ceiling_1.txt: line 3 " in m for m in messages) == 1
    assert sum("wall_3 (1).txt: a copy of wall_3.txt" in m for m in messages) == 1
    assert {"Area_5/hallway_6", "Area_5/office_36"} <= set(rooms["test"])
    assert "Area_6/copyRoom_1" in rooms["train"] + rooms["val"]
    assert "Area_2/auditorium_1" in rooms["train"] + rooms["val"]
    office = items["test"][rooms["test"].index("Area_5/office_36")]
    # wall_3's two points are counted once; stairs read as clutter
    assert int((office.y == CLASSES.index("wall")).sum()) == 2 + 2
    assert int((office.y == CLASSES.index("clutter")).sum()) == 1
    hallway = items["test"][rooms["test"].index("Area_5/hallway_6")]
    assert hallway.pos.shape[0] == 4 + 4  # ceiling_1 (4 rows) + the other four files
    # a second pass is served from the cache: no warning again
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        S3DIS(root, "test", test_area=5)[rooms["test"].index("Area_5/hallway_6")]
    assert not [w for w in again if w.category is S3DISRepairWarning]


def test_a_copy_that_differs_from_its_original_is_read_by_its_class(tmp_path):
    room = write_room(tmp_path, 1, "office_1")
    (room / "Annotations" / "wall_3 (1).txt").write_text("7 7 7 1 1 1\n")
    with pytest.warns(S3DISRepairWarning, match=r"wall_3 \(1\).txt: .*read as wall"):
        out = read_room(room)
    assert out["label"].size == 7 and int((out["label"] == CLASSES.index("wall")).sum()) == 3


def test_a_truncated_room_cache_is_rebuilt_with_a_warning(areas):
    ds = S3DIS(areas, "test")
    first = ds[0].pos.clone()
    cache = areas / "processed" / "s3dis" / "Area_5" / "office_1.npz"
    cache.write_bytes(cache.read_bytes()[:40])
    with pytest.warns(S3DISRepairWarning, match="office_1.npz: unreadable cache"):
        again = ds[0]
    assert torch.equal(again.pos, first)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds[0]  # the rebuilt cache loads silently


def test_a_same_size_edit_with_the_time_restored_is_not_served_stale(areas):
    ds = S3DIS(areas, "test")
    assert ds[0].rgb[-1].tolist() == [71, 64, 54]
    wall = areas / FOLDER / "Area_5" / "office_1" / "Annotations" / "wall_2.txt"
    st = wall.stat()
    wall.write_text(wall.read_text().replace("71 64 54", "72 64 54"))
    os.utime(wall, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert wall.stat().st_size == st.st_size and wall.stat().st_mtime_ns == st.st_mtime_ns
    assert ds[0].rgb[-1].tolist() == [72, 64, 54]


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("wall_9.txt", "", "wall_9.txt: the S3DIS points file is empty"),
        ("wall_9.txt", "x y z r g b\n1 2 3 4 5 6\n", "wall_9.txt: line 1 is"),
        ("lamp_1.txt", "1 2 3 4 5 6\n", "lamp_1.txt: .*known class"),
    ],
)
def test_a_bad_file_in_the_test_area_fails_when_the_training_split_is_built(
    areas, name, text, match
):
    ann = areas / FOLDER / "Area_5" / "office_3" / "Annotations"
    (ann / name).write_text(text)
    S3DIS(areas, "train", test_area=5)  # the file is not in this split
    with pytest.raises(DataError, match=match):
        S3DIS(areas, "test", test_area=5)


def test_check_s3dis_counts_areas_rooms_points_and_lists_the_quirks(tmp_path):
    from pointea.datasets.s3dis import check_s3dis

    root = _release_layout(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", S3DISRepairWarning)
        S3DIS(root, "test")[0]  # the quirks already reported once are listed all the same
        info = check_s3dis(root)
    areas = info["areas"]
    assert list(areas) == [f"Area_{a}" for a in range(1, 7)]
    assert areas["Area_5"]["rooms"] == 4 and areas["Area_1"]["rooms"] == 2
    assert areas["Area_1"]["points"] == 2 * 6
    # Area_5: office_1, office_2 (6 each), hallway_6 (8), office_36 (6 + wall_3's 2)
    assert areas["Area_5"]["points"] == 6 + 6 + 8 + 8
    quirks = "\n".join(info["quirks"])
    assert (
        "Area_5: files beside the rooms, not read: .DS_Store, Area_5_alignmentAngle.txt" in quirks
    )
    assert "hallway_6/Annotations/ceiling_1.txt: line 3 holds the control byte" in quirks
    assert "wall_3 (1).txt: a copy of wall_3.txt" in quirks


@pytest.mark.e2e
def test_pointea_data_check_reports_s3dis(tmp_path, capsys):
    from pointea.cli.data import main

    root = _release_layout(tmp_path)
    assert main(["check", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"{root / FOLDER} [s3dis]" in out
    assert "Area_5    4 rooms" in out and "28 points" in out
    assert "quirk: " in out and "wall_3 (1).txt" in out
    (root / FOLDER / "Area_3" / "office_1" / "Annotations" / "door_1.txt").write_text("a b\n")
    assert main(["check", str(root)]) == 1
    assert "door_1.txt: line 1 is" in capsys.readouterr().err


def test_release_rows_at_their_published_line_numbers(tmp_path):
    """The hallway_6 annotation row at line 180389 and the auditorium_1 room-file row at
    line 18956, each after that many clean rows: the warnings name those lines."""
    from pointea.inference.scene_files import read_scene

    ann = tmp_path / "Area_5" / "hallway_6" / "Annotations"
    ann.mkdir(parents=True)
    path = ann / "ceiling_1.txt"
    path.write_bytes(CLEAN * 180388 + RELEASE_ROWS["hallway_6"][0] + b"\n" + CLEAN)
    with pytest.warns(
        S3DISRepairWarning, match=r"hallway_6/Annotations/ceiling_1.txt: line 180389 "
    ):
        table = parse_annotation(path)
    assert table.shape == (180390, 6) and table[180388].tolist() == pytest.approx(
        RELEASE_ROWS["hallway_6"][1], rel=1e-6
    )
    room = tmp_path / "Area_2" / "auditorium_1"
    room.mkdir(parents=True)
    path = room / "auditorium_1.txt"
    path.write_bytes(CLEAN * 18955 + RELEASE_ROWS["auditorium_1"][0] + b"\n" + CLEAN)
    with pytest.warns(UserWarning, match=r"auditorium_1.txt: line 18956 .*0x10"):
        cloud = read_scene(path)
    assert cloud.points.shape == (18957, 3) and cloud.points[18955, 0] == pytest.approx(179.0)


@pytest.mark.slow
def test_pointea_semseg_trains_validates_and_tests_area_5_on_the_release_layout(tmp_path):
    import json

    from pointea.engine import TrainConfig, train

    root = _release_layout(tmp_path / "data")
    cfg = TrainConfig(
        task="s3dis",
        model="pct_semseg_tiny",
        data_root=str(root),
        epochs=1,
        steps_per_epoch=2,
        batch_size=2,
        num_points=32,
        val_fraction=0.2,
        test_area=5,
        block_vote=True,
        device="cpu",
        output_dir=str(tmp_path / "run"),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(cfg)
    repairs = [str(w.message) for w in caught if w.category is S3DISRepairWarning]
    assert len(repairs) == 2, repairs
    record = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert record["num_rooms"] == 4 and record["num_points"] == 6 + 6 + 8 + 8
    assert sum(map(sum, record["confusion"])) == 28 and "block_vote" in record
