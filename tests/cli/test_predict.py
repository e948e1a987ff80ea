"""``pointea-predict``: every supported input type, every kind of bad input, both tasks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pointea.cli.predict import main
from pointea.datasets.shapenetpart import CATEGORY_PARTS, SHAPENET_CATEGORIES
from pointea.models import create_model
from pointea.models.hub import save_pretrained
from pointea.serialization import atomic_torch_save

pytestmark = pytest.mark.e2e  # pointea-predict runs from files to outputs

CLASSES = ["box", "ball", "stick"]
NUM_POINTS = 256
CHAIR = list(SHAPENET_CATEGORIES).index("Chair")


@pytest.fixture(scope="module")
def cls_checkpoint(tmp_path_factory):
    """A tiny classifier saved as a training checkpoint (the engine's format)."""
    torch.manual_seed(0)
    model = create_model("pct_cls_tiny", num_classes=len(CLASSES)).eval()
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    atomic_torch_save({
        "format": "pointea-checkpoint", "format_version": 1, "task": "classification",
        "model_name": model.name, "model_config": model.hparams, "model": model.state_dict(),
        "epoch": 1, "global_step": 1, "config": {"num_points": NUM_POINTS},
        "class_names": CLASSES, "metrics": {},
    }, path)
    return path


@pytest.fixture(scope="module")
def seg_checkpoint(tmp_path_factory):
    """A tiny segmenter saved as a pretrained folder."""
    torch.manual_seed(0)
    model = create_model("pct_seg_tiny").eval()
    return save_pretrained(model, tmp_path_factory.mktemp("seg") / "model",
                           num_points=NUM_POINTS)


def box_mesh():
    v = np.array([[x, y, z] for x in (0, 1) for y in (0, 2) for z in (0, 3)], dtype=float)
    quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    return v, quads


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """One file of every supported type."""
    import h5py

    from pointea.io import write_ply

    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(700, 3))
    rows = "\n".join(" ".join(f"{v:.6f}" for v in p) for p in pts) + "\n"
    v, quads = box_mesh()
    files = {}
    files["cloud.xyz"] = rows
    files["cloud.txt"] = rows.replace(" ", ",")
    files["cloud.pts"] = f"{len(pts)}\n" + rows
    files["cloud.pcd"] = ("VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\n"
                          f"WIDTH {len(pts)}\nHEIGHT 1\nPOINTS {len(pts)}\nDATA ascii\n" + rows)
    files["box.off"] = ("OFF\n8 6 0\n" + "".join(f"{a} {b} {c}\n" for a, b, c in v)
                        + "".join("4 " + " ".join(map(str, q)) + "\n" for q in quads))
    files["box.obj"] = ("".join(f"v {a} {b} {c}\n" for a, b, c in v)
                        + "".join("f " + " ".join(str(i + 1) for i in q) + "\n" for q in quads))
    for name, text in files.items():
        (d / name).write_text(text)
    write_ply(d / "cloud.ply", pts)
    # binary STL of the box
    tris = np.array([[v[q[0]], v[q[i]], v[q[i + 1]]] for q in quads for i in (1, 2)])
    stl = b"box".ljust(80) + len(tris).to_bytes(4, "little")
    for t in tris:
        stl += np.zeros(3, "<f4").tobytes() + t.astype("<f4").tobytes() + b"\0\0"
    (d / "box.stl").write_bytes(stl)
    # PLY mesh
    ply = ("ply\nformat ascii 1.0\nelement vertex 8\nproperty float x\nproperty float y\n"
           "property float z\nelement face 6\nproperty list uchar int vertex_indices\n"
           "end_header\n" + "".join(f"{a} {b} {c}\n" for a, b, c in v)
           + "".join("4 " + " ".join(map(str, q)) + "\n" for q in quads))
    (d / "mesh.ply").write_text(ply)
    with h5py.File(d / "shapes.h5", "w") as f:
        f["data"] = rng.normal(size=(3, 512, 3)).astype(np.float32)
        f["label"] = np.array([[0], [CHAIR], [2]], dtype=np.uint8)
        parts = np.asarray(CATEGORY_PARTS[CHAIR])
        f["pid"] = parts[rng.integers(0, len(parts), size=(3, 512))].astype(np.uint8)
    return d


ALL_TYPES = ["cloud.xyz", "cloud.txt", "cloud.pts", "cloud.pcd", "cloud.ply", "box.off",
             "box.obj", "box.stl", "mesh.ply", "shapes.h5:1", "shapes.h5#2"]


def run_json(capsys, argv):
    rc = main(argv)
    out = capsys.readouterr()
    return rc, json.loads(out.out), out.err


def test_classifies_every_supported_type(cls_checkpoint, inputs, capsys):
    files = [str(inputs / f) for f in ALL_TYPES]
    rc, doc, err = run_json(capsys, [str(cls_checkpoint), *files, "--json", "--top-k", "3"])
    assert rc == 0, err
    assert doc["kind"] == "classification" and doc["num_points"] == NUM_POINTS
    assert [r["input"] for r in doc["results"]] == [f.replace("#", ":") for f in files]
    for r in doc["results"]:
        assert r["ok"], r
        probs = [t["probability"] for t in r["top_k"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True)
        assert 0 < sum(probs) <= 1 + 1e-5
        assert {t["class"] for t in r["top_k"]} <= set(CLASSES)
    by_name = {r["input"].rsplit("/", 1)[-1]: r for r in doc["results"]}
    assert by_name["box.off"]["surface_sampled"] and not by_name["cloud.xyz"]["surface_sampled"]
    assert by_name["shapes.h5:1"]["label"]["index"] == CHAIR  # the entry's 'label'


def test_same_input_same_prediction_and_permutation_of_files(cls_checkpoint, inputs, capsys):
    a = run_json(capsys, [str(cls_checkpoint), str(inputs / "box.obj"), "--json"])[1]
    b = run_json(capsys, [str(cls_checkpoint), str(inputs / "cloud.xyz"),
                          str(inputs / "box.obj"), "--json"])[1]
    assert a["results"][0]["top_k"] == b["results"][1]["top_k"]


def test_human_output(cls_checkpoint, inputs, capsys):
    assert main([str(cls_checkpoint), str(inputs / "box.off")]) == 0
    assert torch.is_grad_enabled()  # no global state left behind for the caller
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].endswith("box.off") and lines[1].lstrip().startswith("1. ")
    assert len(lines) == 1 + len(CLASSES) and "%" in lines[1]


BAD = {
    "garbage.ply": b"\x00\x01not a ply",
    "empty.xyz": b"",
    "notes.docx": b"hello",
    "noface.obj": b"v 0 0 0\nv 1 0 0\nv 0 1 0\n",
    "nan.xyz": b"0 0 0\n1 nan 0\n0 1 0\n",
    "trunc.stl": b"x" * 80 + (100).to_bytes(4, "little") + b"\0" * 60,
}


def test_each_bad_file_gets_one_line_and_the_rest_still_run(cls_checkpoint, inputs, tmp_path,
                                                            capsys):
    for name, content in BAD.items():
        (tmp_path / name).write_bytes(content)
    bad = [str(tmp_path / n) for n in BAD] + [str(tmp_path / "missing.off"),
                                              str(inputs / "shapes.h5:9")]
    good = [str(inputs / "cloud.xyz"), str(inputs / "box.stl")]
    argv = [str(cls_checkpoint), good[0], *bad, good[1], "--json"]
    rc, doc, err = run_json(capsys, argv)
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == len(bad)
    for path, line in zip(bad, lines, strict=True):
        assert line.startswith("pointea-predict: error: ") and path.split(":")[0] in line
    ok = [r for r in doc["results"] if r["ok"]]
    assert [r["input"] for r in ok] == good
    assert doc["failed"] == len(bad)
    problems = " ".join(lines)
    for phrase in ("not a PLY file", "empty", "unsupported file extension .docx", "no faces",
                   "NaN", "truncated", "no such file", "entry 9 does not exist"):
        assert phrase in problems, phrase


def test_all_good_exit_zero_and_bad_checkpoint_exit_two(inputs, tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert main([str(junk), str(inputs / "cloud.xyz")]) == 2
    err = capsys.readouterr().err
    assert "junk.pt" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exc:
        main([str(junk)])  # neither files nor --render-grid
    assert exc.value.code == 2


def test_segmentation_writes_ply_and_png_with_metrics(seg_checkpoint, inputs, tmp_path,
                                                      capsys):
    from matplotlib.image import imread

    from pointea import io

    out_dir = tmp_path / "out"
    argv = [str(seg_checkpoint), str(inputs / "shapes.h5:1"), str(inputs / "box.obj"),
            str(inputs / "cloud.xyz"), "--category", "chair", "--out-dir", str(out_dir),
            "--json", "--size", "160", "120"]
    rc, doc, err = run_json(capsys, argv)
    assert rc == 0, err
    r_h5, r_obj, r_xyz = doc["results"]
    assert r_h5["category"] == "Chair" and 0 <= r_h5["shape_iou"] <= 1
    assert "shape_iou" not in r_obj  # no ground truth in a mesh
    parts = set(CATEGORY_PARTS[CHAIR])
    for r, n in [(r_h5, 512), (r_obj, NUM_POINTS), (r_xyz, 700)]:
        cloud = io.read_point_cloud(r["ply"])
        assert len(cloud) == n  # every input point labelled
        assert set(np.unique(cloud.labels)) <= parts and cloud.colors is not None
        img = imread(r["png"])
        assert img.shape[0] > 120 and img.shape[1] >= 160
        assert sum(r["part_counts"].values()) == n
    # ground truth -> three panels (truth, prediction, errors) side by side
    assert imread(r_h5["png"]).shape[1] >= 3 * 160


def test_segmentation_category_from_h5_label_or_required(seg_checkpoint, inputs, tmp_path,
                                                         capsys):
    rc, doc, err = run_json(capsys, [str(seg_checkpoint), str(inputs / "shapes.h5:1"),
                                     str(inputs / "box.off"), "--no-png", "--no-ply",
                                     "--out-dir", str(tmp_path), "--json"])
    assert rc == 1
    assert doc["results"][0]["category"] == "Chair"  # from the HDF5 'label'
    assert "--category" in err and "box.off" in err
    assert not any(tmp_path.iterdir())


def test_render_grid_on_a_dataset(cls_checkpoint, tmp_path, capsys):
    from matplotlib.image import imread

    from pointea.datasets.synthetic import write_classification

    write_classification(tmp_path / "data", num_classes=3, train_per_class=2,
                         test_per_class=2, points=256)
    png = tmp_path / "grid.png"
    rc = main([str(cls_checkpoint), "--dataset-root", str(tmp_path / "data"), "--split",
               "test", "--render-grid", str(png), "--num-shapes", "4"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert f"wrote {png}" in out.out
    img = imread(png)
    assert img.shape[0] > 256 and (img[..., :3] < 0.9).any()


@pytest.mark.slow
def test_console_stdout_is_pure_json_even_when_rendering(seg_checkpoint, inputs, tmp_path):
    """open3d's engine prints to file descriptor 1 when it starts: not into our JSON."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "pointea.cli.predict", str(seg_checkpoint),
           str(inputs / "shapes.h5:1"), "--out-dir", str(tmp_path), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out.stdout)
    assert doc["results"][0]["png"].endswith(".png")


@pytest.mark.slow
def test_render_grid_from_a_training_run_needs_no_dataset_flags(tmp_path, capsys):
    """The demo's last step: the checkpoint records its data and evaluation pipeline."""
    from matplotlib.image import imread

    from pointea.cli.train import main as train_main
    from pointea.datasets import ensure_synthetic

    data = ensure_synthetic("shapenetpart", root=tmp_path / "d", categories=["Mug", "Lamp"],
                            train_per_category=2, val_per_category=1, test_per_category=2,
                            points=96)
    run = tmp_path / "run"
    assert train_main(["--data-root", str(data), "--model", "pct_seg_tiny", "--batch-size", "4",
                       "--num-points", "64", "--epochs", "1", "--no-progress",
                       "--output-dir", str(run), "--task", "shapenetpart"]) == 0
    capsys.readouterr()
    png = tmp_path / "grid.png"
    rc = main([str(run / "checkpoints" / "best.pt"), "--render-grid", str(png),
               "--num-shapes", "3", "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert json.loads(out.out)["render_grid"] == str(png)
    img = imread(png)
    assert img.shape[1] == 3 * 256 + 4 * 6  # three panels in a row


def test_degenerate_but_valid_clouds_are_predicted_with_a_warning(cls_checkpoint, tmp_path,
                                                                  capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    (tmp_path / "one.xyz").write_text("1 2 3\n")
    (tmp_path / "same.xyz").write_text("1 2 3\n" * 50)
    (tmp_path / "dup.xyz").write_text("0 0 0\n1 0 0\n" * 300)
    (tmp_path / "huge.xyz").write_text("1e30 0 0\n-1e30 5e29 0\n0 0 1e30\n")
    files = [str(tmp_path / n) for n in ("one.xyz", "same.xyz", "dup.xyz", "huge.xyz")]
    rc, doc, err = run_json(capsys, [str(cls_checkpoint), *files, "--json", "--show"])
    assert rc == 0, err
    assert all(r["ok"] for r in doc["results"])
    assert err.count("zero extent") == 2 and "one.xyz" in err and "same.xyz" in err
    assert "--show" in err  # no display here: a warning, not a failure


def test_a_folder_expands_to_its_supported_files(cls_checkpoint, inputs, capsys):
    rc, doc, err = run_json(capsys, [str(cls_checkpoint), str(inputs), "--json"])
    assert rc == 0, err
    names = [r["input"].rsplit("/", 1)[-1] for r in doc["results"]]
    assert len(names) == 10 - 1 + 3  # 10 files, the HDF5 file counted as its 3 entries
    assert {"shapes.h5:0", "shapes.h5:2", "box.stl", "cloud.pcd"} <= set(names)


def test_unknown_category_is_a_usage_error(seg_checkpoint, inputs, capsys):
    assert main([str(seg_checkpoint), str(inputs / "box.obj"), "--category", "Spaceship"]) == 2
    err = capsys.readouterr().err
    assert "Spaceship" in err and "Chair" in err and len(err.strip().splitlines()) == 1


def test_pct_pytorch_checkpoint_predicts_with_modelnet40_names(inputs, tmp_path, capsys):
    from pointea_testing import fake_pct_state_dict

    from pointea.cli.convert import MODELNET40_CLASSES

    path = tmp_path / "model.t7"
    torch.save(fake_pct_state_dict(), path)
    rc, doc, err = run_json(capsys, [str(path), str(inputs / "box.off"), "--json",
                                     "--num-points", "512"])
    assert rc == 0, err
    top = doc["results"][0]["top_k"]
    assert len(top) == 5 and all(t["class"] == MODELNET40_CLASSES[t["index"]] for t in top)


def test_modelnet_h5_label_is_not_taken_for_a_category(seg_checkpoint, tmp_path, capsys):
    import h5py

    with h5py.File(tmp_path / "mn.h5", "w") as f:  # ModelNet40 layout: no 'pid'
        f["data"] = np.random.default_rng(0).normal(size=(1, 128, 3)).astype(np.float32)
        f["label"] = np.array([[CHAIR]], dtype=np.uint8)
    rc = main([str(seg_checkpoint), f"{tmp_path / 'mn.h5'}:0", "--no-png", "--no-ply"])
    assert rc == 1 and "--category" in capsys.readouterr().err


def test_models_with_normals_estimate_them_for_bare_clouds(inputs, tmp_path, capsys):
    model = create_model("pct_cls_tiny", num_classes=2, in_channels=6).eval()
    ckpt = save_pretrained(model, tmp_path / "m", class_names=["a", "b"], num_points=NUM_POINTS)
    files = [str(inputs / "cloud.xyz"), str(inputs / "box.obj")]  # no normals / face normals
    rc, doc, err = run_json(capsys, [str(ckpt), *files, "--json"])
    assert rc == 0, err
    assert err.count("estimated") == 1  # one warning, not one per file
    rc, doc, err = run_json(capsys, [str(ckpt), *files, "--json", "--no-estimate-normals"])
    assert rc == 1 and "cloud.xyz: the model reads normals" in err
    assert [r["ok"] for r in doc["results"]] == [False, True]  # the mesh has face normals
