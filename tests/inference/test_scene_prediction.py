"""Scenes through the Predictor: reading files with colours, the exact whole-scene pass,
results, outputs, renders and every kind of bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pointea_testing import scene_arrays, write_scene_txt

from pointea.datasets.s3dis import CLASSES
from pointea.errors import DataError, InputError
from pointea.inference import Predictor, SceneSegmentation
from pointea.inference.scene_files import read_scene, read_truth, write_scene_labels
from pointea.inference.scenes import (
    render_scene,
    scene_class_colors,
    scene_figure,
    segment_scene,
    to_z_up,
)
from pointea.io import write_ply
from pointea.metrics import semseg_metrics
from pointea.models import create_model
from pointea.models.semseg import room_logits
from pointea.scene_features import room_features


@pytest.fixture(scope="module")
def ckpt(semseg_checkpoint):
    return semseg_checkpoint


@pytest.fixture(scope="module")
def predictor(ckpt):
    return Predictor.from_pretrained(ckpt, device="cpu")


@pytest.fixture(scope="module")
def scene():
    return scene_arrays(700)


def _rows(xyz, rgb):
    return np.concatenate([xyz, rgb.astype(np.float64)], axis=1)


# -- the predictor ------------------------------------------------------------------------
def test_semseg_checkpoint_loads_as_a_scene_predictor(predictor):
    assert predictor.kind == "semseg"
    assert predictor.class_names == list(CLASSES)
    assert "semseg" in repr(predictor)


def test_segment_scene_equals_the_library_room_pass(predictor, scene):
    xyz, rgb, _ = scene
    res = predictor.segment_scene(xyz, rgb.astype(np.float64) / 255.0)
    expected = segment_scene(predictor.model, xyz, rgb, chunk_size=predictor.chunk_size)
    assert isinstance(res, SceneSegmentation) and res.labels.dtype == np.int64
    assert (res.labels == expected).all()
    assert len(np.unique(res.labels)) > 1, "a constant prediction would make this test weak"
    # uint8 colours are read as 0..255
    assert (predictor.segment_scene(xyz, rgb).labels == expected).all()
    # the model-level pass on the room as given: only the float32 rounding of the room
    # frame differs (no ties here)
    logits = room_logits(predictor.model, torch.from_numpy(xyz), torch.from_numpy(rgb))
    assert (logits.argmax(1).numpy() == expected).mean() > 0.99


def test_streamed_pass_equals_the_plain_forward(ckpt, scene):
    xyz, rgb, _ = scene
    small = Predictor.from_pretrained(ckpt, device="cpu", chunk_size=97)
    labels = small.segment_scene(xyz, rgb).labels
    local = torch.from_numpy((xyz - xyz.min(0)).astype(np.float32))
    with torch.no_grad():
        plain = small.model(*room_features(local, torch.from_numpy(rgb))[::-1]).argmax(1).numpy()
    assert (labels == plain).mean() > 0.995  # chunked sums differ only by rounding


def test_counts_scores_and_json(predictor, scene):
    xyz, rgb, truth = scene
    res = predictor.segment_scene(xyz, rgb)
    counts = res.counts()
    assert list(counts) == list(CLASSES) and sum(counts.values()) == len(xyz)
    assert counts == {c: int((res.labels == i).sum()) for i, c in enumerate(CLASSES)}
    scores = res.scores(truth)
    ref = semseg_metrics(torch.from_numpy(res.labels), torch.from_numpy(truth), 13)
    assert scores["mean_iou"] == pytest.approx(ref["mean_iou"])
    assert scores["overall_accuracy"] == pytest.approx((res.labels == truth).mean())
    assert list(scores["per_class_iou"]) == list(CLASSES)
    json.dumps(res.to_dict())
    with pytest.raises(InputError, match="labels for"):
        res.scores(truth[:-1])


def test_translation_and_float64_offsets_do_not_change_the_labels(predictor, scene):
    xyz, rgb, _ = scene
    base = predictor.segment_scene(xyz, rgb).labels
    far = predictor.segment_scene(xyz + [4.5e5, 5.2e6, 120.0], rgb).labels  # UTM-like
    assert (base == far).all()


def test_up_axis_is_rotated_to_z(predictor, scene):
    xyz, rgb, _ = scene
    base = predictor.segment_scene(xyz, rgb).labels
    y_up = np.stack([xyz[:, 0], xyz[:, 2], -xyz[:, 1]], axis=1)  # the same room, y up
    assert np.allclose(to_z_up(y_up, "y"), xyz)
    assert (predictor.segment_scene(y_up, rgb, up="y").labels == base).all()
    x_up = np.stack([xyz[:, 2], xyz[:, 0], xyz[:, 1]], axis=1)
    assert np.allclose(to_z_up(x_up, "x"), xyz)
    with pytest.raises(InputError, match="up must be"):
        to_z_up(xyz, "w")


def test_units_far_from_metres_warn(ckpt, scene):
    xyz, rgb, _ = scene
    seen = []
    pred = Predictor.from_pretrained(ckpt, device="cpu", on_warning=seen.append)
    pred.segment_scene(xyz * 1000.0, rgb, source="mm.txt")
    assert seen and "mm.txt" in seen[0] and "metres" in seen[0]
    seen.clear()
    pred.segment_scene(xyz, rgb)
    assert not seen


def test_wrong_task_errors(predictor, scene, tmp_path):
    xyz, rgb, _ = scene
    with pytest.raises(InputError, match="scene segmenter"):
        predictor.classify(xyz)
    with pytest.raises(InputError, match="scene segmenter"):
        predictor.segment(xyz, "Chair")
    cls = Predictor(create_model("pct_cls_tiny", num_classes=3), num_points=64)
    with pytest.raises(InputError, match="pointea-semseg"):
        cls.segment_scene(xyz, rgb)
    np.save(tmp_path / "room.npy", _rows(xyz, rgb))
    with pytest.raises(DataError, match=r"room\.npy.*scene segmenter"):
        cls.predict_file(tmp_path / "room.npy")
    (tmp_path / "box.off").write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    with pytest.raises(DataError, match=r"box\.off.*scene"):
        predictor.predict_file(tmp_path / "box.off")
    with pytest.raises(DataError, match="HDF5 entry"):
        predictor.predict_file(f"{tmp_path}/x.h5:3")
    with pytest.raises(InputError, match="category"):
        predictor.predict_file(tmp_path / "room.npy", category="Chair")


def test_bad_arrays_are_input_errors(predictor, scene):
    xyz, rgb, _ = scene
    with pytest.raises(InputError, match="colors"):
        predictor.segment_scene(xyz, rgb[:-1])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        predictor.segment_scene(xyz, rgb.astype(np.float64))  # 0..255 floats
    bad = xyz.copy()
    bad[3, 1] = np.nan
    with pytest.raises(InputError, match="non-finite"):
        predictor.segment_scene(bad, rgb)
    with pytest.raises(InputError, match="num_points >= 1"):
        predictor.segment_scene(np.zeros((0, 3)), np.zeros((0, 3)))


def test_self_attention_refuses_scenes_its_map_cannot_hold(scene):
    model = create_model("pct_semseg_tiny", attention="self").eval()
    n = 24_000  # 24k^2 floats: 2.1 GiB
    xyz = np.random.default_rng(0).random((n, 3)) * 5
    with pytest.raises(InputError, match="external-attention"):
        segment_scene(model, xyz, np.full((n, 3), 0.5))
    xyz, rgb, _ = scene  # small scenes run whole
    assert segment_scene(model, xyz, rgb / 255.0).shape == (len(xyz),)


def test_segment_scene_takes_arrays_or_tensors_and_uint8_or_unit_colours(scene):
    model = create_model("pct_semseg_tiny").eval()
    xyz, rgb, _ = scene
    labels = segment_scene(model, xyz, rgb, chunk_size=128)
    assert labels.dtype == np.int64 and labels.shape == (len(xyz),)
    assert (segment_scene(model, xyz, rgb / 255.0, chunk_size=128) == labels).all()
    tensors = segment_scene(model, torch.from_numpy(xyz), torch.from_numpy(rgb), chunk_size=128)
    assert (tensors == labels).all()
    # the other name of the same call
    assert (segment_scene(model, xyz, rgb, chunk_size=128) == labels).all()
    # the streamed pass equals the plain forward on the same room frame
    local = torch.from_numpy((xyz - xyz.min(0)).astype(np.float32))
    with torch.no_grad():
        plain = model(*room_features(local, torch.from_numpy(rgb))[::-1]).argmax(1).numpy()
    assert (labels == plain).mean() > 0.995


def test_segment_scene_validates_model_and_settings(scene):
    model = create_model("pct_semseg_tiny").eval()
    xyz, rgb, _ = scene
    with pytest.raises(InputError, match="scene segmenter"):
        segment_scene(create_model("pct_seg_tiny").eval(), xyz, rgb)
    with pytest.raises(InputError, match="eval mode"):
        segment_scene(create_model("pct_semseg_tiny").train(), xyz, rgb)
    with pytest.raises(InputError, match="chunk_size"):
        segment_scene(model, xyz, rgb, chunk_size=8)
    with pytest.raises(InputError, match="up"):
        segment_scene(model, xyz, rgb, up="w")
    with pytest.raises(InputError, match="num_points >= 1"):
        segment_scene(model, xyz[:, :2], rgb)
    with pytest.raises(InputError, match="colors"):
        segment_scene(model, xyz, rgb[:, :2])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        segment_scene(model, xyz, rgb.astype(np.float32))  # 0..255 floats
    with pytest.raises(InputError, match="non-finite"):
        segment_scene(model, np.full_like(xyz, np.nan), rgb)


def test_predict_sample_segments_an_s3dis_room(predictor, scene):
    from torch_geometric.data import Data

    xyz, rgb, _ = scene
    data = Data(pos=torch.from_numpy(xyz.astype(np.float32)), rgb=torch.from_numpy(rgb))
    res = predictor.predict_sample(data)
    assert (res.labels == predictor.segment_scene(xyz, rgb).labels).mean() > 0.99


# -- scene files --------------------------------------------------------------------------
def _write_all(d, xyz, rgb, labels):
    write_ply(d / "room.ply", xyz, colors=rgb, labels=labels)
    write_scene_txt(d / "room.txt", xyz, rgb, labels, header="//X,Y,Z,R,G,B,Label\n")
    write_scene_txt(d / "room.xyz", xyz, rgb)
    np.save(d / "room.npy", np.column_stack([xyz, rgb, labels]))
    leica = np.column_stack([xyz, np.zeros(len(xyz)), rgb])
    np.savetxt(d / "room.pts", leica, fmt="%.3f", header=str(len(xyz)), comments="")
    return ["room.ply", "room.txt", "room.xyz", "room.npy", "room.pts"]


def test_every_scene_format_reads_the_same_points(tmp_path, scene):
    xyz, rgb, labels = scene
    for name in _write_all(tmp_path, xyz, rgb, labels):
        cloud = read_scene(tmp_path / name, num_classes=13)
        assert np.allclose(cloud.points, xyz, atol=1e-5), name
        assert np.allclose(cloud.colors, rgb / 255.0), name
        has_labels = name in ("room.ply", "room.txt", "room.npy")
        assert (cloud.labels is not None) == has_labels, name
        if has_labels:
            assert (cloud.labels == labels).all(), name


def test_colour_conventions(tmp_path, scene):
    xyz, rgb, _ = scene
    unit = rgb / 255.0
    np.savetxt(tmp_path / "unit.txt", np.column_stack([xyz, unit]), fmt="%.9f")
    assert np.allclose(read_scene(tmp_path / "unit.txt").colors, unit)
    np.save(tmp_path / "uint8.npy", np.column_stack([xyz, rgb]).astype(np.float32))
    np.save(tmp_path / "int.npy", np.column_stack([xyz * 0 + 1, np.ones_like(rgb)]).astype(int))
    assert np.allclose(read_scene(tmp_path / "uint8.npy").colors, unit, atol=1e-6)
    # an integer array is 0..255 even when every value is 0 or 1
    assert np.allclose(read_scene(tmp_path / "int.npy").colors, 1 / 255)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("xyz_only.txt", "0 0 0\n1 1 1\n2 0 1\n", "needs colours"),
        ("xyzl.txt", "0 0 0 1\n1 1 1 2\n", "needs colours"),
        ("wide.txt", "0 0 0 1 2 3 4 5\n1 1 1 1 2 3 4 5\n", "8 columns"),
        ("red.txt", "0 0 0 10 20 30\n1 1 1 300 0 0\n", r"line 2: colour r \(column 4\) = 300"),
        ("neg.txt", "0 0 0 10 -1 30\n1 1 1 3 0 0\n", r"line 1: colour g \(column 5\) = -1"),
        ("nan_rgb.txt", "0 0 0 10 nan 30\n1 1 1 3 0 0\n", "outside 0..255"),
        ("nan.txt", "0 0 0 1 2 3\nnan 1 1 1 2 3\n", "NaN"),
        ("empty.txt", "", "empty"),
        ("comments.txt", "# only\n// comments\n", "no data rows"),
        ("word.txt", "0 0 0 1 2 3\n1 x 1 1 2 3\n", "not a number"),
        ("room.obj", "v 0 0 0\n", "unsupported extension .obj"),
    ],
)
def test_bad_scene_files_name_the_file_and_the_problem(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=match) as info:
        read_scene(path)
    assert str(path) in str(info.value)


def test_more_bad_scene_files(tmp_path, scene):
    xyz, rgb, _ = scene
    with pytest.raises(DataError, match="no such file"):
        read_scene(tmp_path / "missing.ply")
    write_ply(tmp_path / "plain.ply", xyz)
    with pytest.raises(DataError, match=r"plain\.ply: has no vertex colours"):
        read_scene(tmp_path / "plain.ply")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match=r"obj\.npy: not a readable"):
        read_scene(tmp_path / "obj.npy")
    np.save(tmp_path / "flat.npy", np.zeros(6))
    with pytest.raises(DataError, match=r"\(N, 6\)"):
        read_scene(tmp_path / "flat.npy")
    np.save(tmp_path / "none.npy", np.zeros((0, 6)))
    with pytest.raises(DataError, match="empty"):
        read_scene(tmp_path / "none.npy")
    (tmp_path / "header.ply").write_text(
        "ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\nproperty float y\n"
        "property float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n"
        "end_header\n"
    )
    with pytest.raises(DataError, match="empty"):
        read_scene(tmp_path / "header.ply")


def test_nonfinite_points_can_be_dropped(tmp_path, scene):
    xyz, rgb, labels = scene
    bad = xyz.copy()
    bad[[5, 9]] = np.nan
    np.save(tmp_path / "nan.npy", np.column_stack([bad, rgb, labels]))
    with pytest.raises(DataError, match="--drop-nonfinite"):
        read_scene(tmp_path / "nan.npy")
    with pytest.warns(UserWarning, match="dropped 2 of 700"):
        cloud = read_scene(tmp_path / "nan.npy", drop_nonfinite=True)
    keep = np.ones(700, bool)
    keep[[5, 9]] = False
    assert len(cloud) == 698 and (cloud.labels == labels[keep]).all()
    assert np.allclose(cloud.colors, rgb[keep] / 255.0)


def test_a_label_column_that_is_not_class_ids_is_ignored_with_a_warning(tmp_path, scene):
    xyz, rgb, labels = scene
    write_scene_txt(tmp_path / "big.txt", xyz, rgb, labels + 20)
    with pytest.warns(UserWarning, match="13 classes"):
        assert read_scene(tmp_path / "big.txt", num_classes=13).labels is None
    np.savetxt(tmp_path / "frac.txt", np.column_stack([xyz, rgb, labels + 0.5]), fmt="%.3f")
    with pytest.warns(UserWarning, match="not whole numbers"):
        assert read_scene(tmp_path / "frac.txt").labels is None


def test_truth_files(tmp_path, scene):
    _, _, labels = scene
    np.save(tmp_path / "t.npy", labels)
    np.savetxt(tmp_path / "t.labels", labels, fmt="%d")
    assert (read_truth(tmp_path / "t.npy", 700, 13) == labels).all()
    assert (read_truth(tmp_path / "t.labels", 700, 13) == labels).all()
    with pytest.raises(DataError, match="700 labels for the scene.s 699 points"):
        read_truth(tmp_path / "t.npy", 699, 13)
    np.save(tmp_path / "big.npy", labels + 13)
    with pytest.raises(DataError, match=r"0\.\.12"):
        read_truth(tmp_path / "big.npy", 700, 13)


def test_predict_scene_file_uses_the_label_column_or_a_truth_file(predictor, tmp_path, scene):
    xyz, rgb, labels = scene
    write_scene_txt(tmp_path / "room.txt", xyz, rgb, labels)
    item = predictor.predict_scene_file(tmp_path / "room.txt")
    assert item.kind == "semseg" and (item.truth == labels).all()
    d = item.to_dict()
    assert d["kind"] == "semseg" and d["points_read"] == 700
    assert d["mean_iou"] == pytest.approx(item.result.scores(labels)["mean_iou"], abs=1e-6)
    json.dumps(d)
    write_scene_txt(tmp_path / "plain.txt", xyz, rgb)
    np.save(tmp_path / "t.npy", labels)
    item = predictor.predict_scene_file(tmp_path / "plain.txt", truth=tmp_path / "t.npy")
    assert (item.truth == labels).all() and item.to_dict()["truth"].endswith("t.npy")
    assert predictor.predict_scene_file(tmp_path / "plain.txt").truth is None


def test_written_labels_read_back(predictor, tmp_path, scene):
    xyz, rgb, _ = scene
    write_scene_txt(tmp_path / "room.txt", xyz, rgb)
    item = predictor.predict_scene_file(tmp_path / "room.txt")
    pred, cols = item.result.labels, scene_class_colors(13)
    write_scene_labels(tmp_path / "out.ply", item.cloud, pred, cols)
    back = read_scene(tmp_path / "out.ply", num_classes=13)
    assert (back.labels == pred).all()
    assert np.allclose(back.colors, np.round(cols[pred] * 255) / 255)
    write_scene_labels(tmp_path / "out.txt", item.cloud, pred, cols)
    back = read_scene(tmp_path / "out.txt", num_classes=13)
    assert (back.labels == pred).all() and np.allclose(back.colors, rgb / 255.0)
    assert np.allclose(back.points, xyz, atol=1e-6)
    write_scene_labels(tmp_path / "out.npy", item.cloud, pred, cols)
    assert (np.load(tmp_path / "out.npy") == pred).all()
    with pytest.raises(InputError, match="unsupported output extension"):
        write_scene_labels(tmp_path / "out.las", item.cloud, pred, cols)


# -- views --------------------------------------------------------------------------------
def test_render_scene_with_and_without_truth(scene):
    xyz, rgb, labels = scene
    pred = (labels + 1) % 13
    img = render_scene(xyz, rgb, pred, CLASSES, width=64, height=48, backend="numpy")
    assert img.dtype == np.uint8 and img.ndim == 3 and img.std() > 0
    cmp = render_scene(xyz, rgb, pred, CLASSES, truth=labels, width=64, height=48, backend="numpy")
    assert cmp.shape[1] > img.shape[1]  # four columns instead of two


def test_scene_figure_subsamples_for_display(scene):
    xyz, _, labels = scene
    fig = scene_figure(xyz, labels, CLASSES, title="room", max_points=100)
    trace = fig.data[0]
    assert len(trace.x) == 100 and "100 of 700 points shown" in fig.layout.title.text
    assert set(trace.hovertext) <= set(CLASSES)
    with pytest.raises(InputError, match="max_points"):
        scene_figure(xyz, labels, CLASSES, max_points=0)


def test_pcd_scene_with_packed_rgb(tmp_path, scene):
    xyz, rgb, _ = scene
    packed = (rgb[:, 0].astype(np.uint32) << 16) | (rgb[:, 1].astype(np.uint32) << 8) | rgb[:, 2]
    rows = "".join(
        f"{a:.3f} {b:.3f} {c:.3f} {p}\n" for (a, b, c), p in zip(xyz, packed, strict=True)
    )
    head = (
        "VERSION 0.7\nFIELDS x y z rgb\nSIZE 4 4 4 4\nTYPE F F F U\nCOUNT 1 1 1 1\n"
        f"WIDTH {len(xyz)}\nHEIGHT 1\nPOINTS {len(xyz)}\nDATA ascii\n"
    )
    (tmp_path / "room.pcd").write_text(head + rows)
    cloud = read_scene(tmp_path / "room.pcd")
    assert np.allclose(cloud.points, xyz, atol=1e-5) and np.allclose(cloud.colors, rgb / 255.0)
    gray = (
        "VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\n"
        f"WIDTH {len(xyz)}\nHEIGHT 1\nPOINTS {len(xyz)}\nDATA ascii\n"
    )
    (tmp_path / "gray.pcd").write_text(gray + "".join(f"{a} {b} {c}\n" for a, b, c in xyz))
    with pytest.raises(DataError, match=r"gray\.pcd: has no vertex colours"):
        read_scene(tmp_path / "gray.pcd")
