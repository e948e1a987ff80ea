"""Rendering (pointea.visualization): size, visible points, label colours."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from pointea import io
from pointea import visualization as viz
from pointea.datasets.shapenetpart import CATEGORY_PARTS, PART_NAMES, SHAPENET_CATEGORIES
from pointea.visualization import render as viz_render

BACKENDS = ["open3d", "numpy"]


def two_blobs(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two well separated blobs (label 0 on the left, label 1 on the right)."""
    rng = np.random.default_rng(seed)
    left = rng.normal(scale=0.08, size=(n, 3)) + [-0.6, 0, 0]
    right = rng.normal(scale=0.08, size=(n, 3)) + [0.6, 0, 0]
    return np.vstack([left, right]), np.repeat([0, 1], n)


def pixel_near(img: np.ndarray, col: float, row: float, r: int = 2) -> np.ndarray:
    c, rr = int(round(col)), int(round(row))
    return img[rr - r : rr + r + 1, c - r : c + r + 1].reshape(-1, 3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_render_size_not_blank_and_colours_match_labels(backend):
    pts, lab = two_blobs()
    cols = viz.label_colors(lab)
    w, h = 320, 240
    cam = viz.fit_camera(pts, width=w, height=h, azimuth=0, elevation=0)
    img = viz.render_points(pts, cols, width=w, height=h, camera=cam, point_size=6,
                            backend=backend)
    assert img.shape == (h, w, 3) and img.dtype == np.uint8
    background = np.all(img == 255, axis=2)
    assert 0.02 < 1 - background.mean() < 0.8  # points visible, not all covered
    assert background[0, 0] and background[-1, -1]
    palette8 = np.round(viz.palette(2) * 255).astype(int)
    for label in (0, 1):
        centre = pts[lab == label].mean(axis=0, keepdims=True)
        col, row, depth = viz.project_points(centre, cam, w, h)
        assert depth[0] > 0 and 0 <= col[0] < w and 0 <= row[0] < h
        patch = pixel_near(img, col[0], row[0]).astype(int)
        # the blob's centre shows the blob's colour (exact up to rounding), never the other
        match = np.abs(patch - palette8[label]).max(axis=1) <= 2
        assert match.mean() > 0.8, (label, patch[:5])
        other = np.abs(patch - palette8[1 - label]).max(axis=1) <= 2
        assert not other.any()
    # every non-background pixel is one of the two label colours (or an edge blend)
    fg = img[~background].astype(int)
    exact = np.min([np.abs(fg - c).max(axis=1) for c in palette8], axis=0) <= 2
    assert exact.mean() > 0.7


def test_backends_agree_on_where_points_land():
    pts, lab = two_blobs(200)
    kw = dict(width=160, height=120, point_size=4, azimuth=30, elevation=20)
    a = viz.render_points(pts, viz.label_colors(lab), backend="open3d", **kw)
    b = viz.render_points(pts, viz.label_colors(lab), backend="numpy", **kw)
    fa, fb = np.any(a != 255, axis=2), np.any(b != 255, axis=2)
    iou = (fa & fb).sum() / (fa | fb).sum()
    assert iou > 0.6


def test_camera_fits_object_whatever_its_scale_and_position():
    rng = np.random.default_rng(1)
    for scale, shift in [(1.0, 0.0), (1000.0, 5e4), (1e-3, -2.0)]:
        pts = rng.normal(size=(500, 3)) * scale + shift
        cam = viz.fit_camera(pts, width=200, height=100, up="z")
        col, row, depth = viz.project_points(pts, cam, 200, 100)
        assert np.all(depth > 0)
        assert col.min() >= 0 and col.max() < 200 and row.min() >= 0 and row.max() < 100
        # the object fills a good part of the limiting (vertical) direction
        assert row.max() - row.min() > 35


def test_renderer_is_reused_and_sizes_can_change():
    pts, lab = two_blobs(50)
    for w, h in [(64, 48), (64, 48), (96, 80)]:
        assert viz.render_points(pts, width=w, height=h, backend="open3d").shape == (h, w, 3)
    viz.release_renderer()
    assert viz.render_points(pts, width=32, height=32, backend="open3d").shape == (32, 32, 3)


@pytest.mark.e2e
def test_process_exits_cleanly_and_stdout_stays_clean(tmp_path):
    """Several renders of different sizes, then exit: no abort at exit (one renderer at a
    time), and nothing from open3d's engine on stdout."""
    code = (
        "import numpy as np; from pointea import visualization as viz\n"
        "p = np.random.default_rng(0).normal(size=(100, 3))\n"
        "for s in (40, 60, 40):\n"
        "    viz.render_points(p, width=s, height=s, backend='open3d')\n"
        "print('DONE')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout == "DONE\n"


def test_part_colours_fixed_per_category_and_distinct():
    names = list(SHAPENET_CATEGORIES)
    for c, parts in enumerate(CATEGORY_PARTS):
        cols = viz.part_colors(np.asarray(parts), c)
        assert len(np.unique(cols, axis=0)) == len(parts)  # no two parts share a colour
        np.testing.assert_array_equal(cols, viz.part_colors(np.asarray(parts), names[c].upper()))
        legend = viz.part_legend(c)
        assert [n for n, _ in legend] == [PART_NAMES[p] for p in parts]
        np.testing.assert_allclose([col for _, col in legend], cols)
        assert not any(np.allclose(col, viz.ERROR_COLOR) for col in cols)
    with pytest.raises(ValueError, match="unknown ShapeNetPart category"):
        viz.part_colors([0], "Spaceship")


def test_palette_is_stable_and_large():
    p = viz.palette(60)
    assert p.shape == (60, 3) and len(np.unique(np.round(p, 3), axis=0)) == 60
    np.testing.assert_array_equal(viz.palette(5), p[:5])
    assert np.all((p >= 0) & (p <= 1))


def test_comparison_figure_has_panels_legend_and_highlights_errors():
    cat = list(SHAPENET_CATEGORIES).index("Chair")
    parts = CATEGORY_PARTS[cat]
    pts, lab = two_blobs(300)
    gt = np.asarray(parts)[lab]
    pred = gt.copy()
    pred[:60] = parts[2]  # 60 wrong points in the left blob
    w = h = 200
    img = viz.render_comparison(pts, gt, pred, category="Chair", width=w, height=h,
                                title="chair", backend="numpy", azimuth=0, elevation=0)
    assert img.ndim == 3 and img.shape[1] >= 3 * w and img.shape[0] > h
    err8 = np.round(np.asarray(viz.ERROR_COLOR) * 255).astype(int)
    is_err = np.abs(img.astype(int) - err8).max(axis=2) <= 2
    third = is_err[:, 2 * w :]
    assert third.sum() > 20  # wrong points drawn in red in the error panel
    assert is_err[:, : w].sum() < 5  # ... and not in the ground-truth panel
    # legend swatches: every part colour appears below the panels
    below = img[-40:].reshape(-1, 3).astype(int)
    for _, col in viz.part_legend("Chair"):
        c8 = np.round(np.asarray(col) * 255).astype(int)
        assert (np.abs(below - c8).max(axis=1) <= 2).any()


def test_grid_layout_and_exact_panel_pixels():
    pts, lab = two_blobs(100)
    panels = [viz.render_points(pts, viz.label_colors(lab), width=64, height=48,
                                backend="numpy") for _ in range(5)]
    img = viz.compose([viz.Panel(p, f"#{i}") for i, p in enumerate(panels)], ncols=3)
    assert img.shape[1] == 3 * 64 + 4 * 6 and img.dtype == np.uint8
    # a panel is pasted unresampled somewhere in the image
    found = any(
        np.array_equal(img[y : y + 48, x : x + 64], panels[0])
        for y in range(0, 40) for x in range(0, 12)
    )
    assert found
    grid = viz.render_grid([pts, pts * 2, pts + 1], [viz.PALETTE[0], None, None], ncols=2,
                           titles=["a", "b", "c"], width=64, height=64, backend="numpy")
    assert grid.shape[1] == 2 * 64 + 3 * 6


def test_save_png_and_export_ply(tmp_path):
    import matplotlib.image as mpimg

    pts, lab = two_blobs(40)
    img = viz.render_points(pts, viz.label_colors(lab), width=50, height=30, backend="numpy")
    path = viz.save_png(tmp_path / "a.png", img)
    back = (mpimg.imread(path)[..., :3] * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(back, img)
    cat = 4  # Chair
    parts = np.asarray(CATEGORY_PARTS[cat])[lab]
    ply = viz.export_ply(tmp_path / "a.ply", pts, labels=parts, category=cat)
    cloud = io.read_point_cloud(ply)
    np.testing.assert_array_equal(cloud.labels, parts)
    want = np.round(viz.part_colors(parts, cat) * 255) / 255
    np.testing.assert_allclose(cloud.colors, want, atol=1e-9)


def test_bad_arguments():
    with pytest.raises(ValueError, match="non-empty"):
        viz.render_points(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="NaN"):
        viz.render_points(np.array([[0, 0, np.nan]]))
    with pytest.raises(ValueError, match="colors"):
        viz.render_points(np.zeros((3, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="backend"):
        viz.render_points(np.zeros((3, 3)), backend="vulkan")


def test_show_without_display_says_so(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if not sys.platform.startswith("linux"):
        pytest.skip("display detection is Linux-specific")
    with pytest.raises(RuntimeError, match="no display"):
        viz.show(np.zeros((3, 3)))


class _ListDataset(list):
    pass


def test_prediction_grid_for_both_tasks(tmp_path):
    from torch_geometric.data import Data

    from pointea.inference import render_prediction_grid
    from pointea.models import create_model

    g = torch.Generator().manual_seed(0)
    cls_ds = _ListDataset(Data(pos=torch.rand(300, 3, generator=g) * 2 - 1,
                               y=torch.tensor([i % 3])) for i in range(4))
    model = create_model("pct_cls_tiny", num_classes=3)
    model.train()
    img = render_prediction_grid(model, cls_ds, tmp_path / "cls.png", num_shapes=3,
                                 class_names=["a", "b", "c"], ncols=3, width=96,
                                 height=96, num_points=256)
    assert (tmp_path / "cls.png").stat().st_size > 0 and img.shape[1] == 3 * 96 + 4 * 6
    assert model.training  # restored
    seg_ds = _ListDataset(Data(pos=torch.rand(200, 3, generator=g),
                               y=torch.full((200,), CATEGORY_PARTS[4][0]),
                               category=torch.tensor([4])) for _ in range(2))
    seg = create_model("pct_seg_tiny")
    img = render_prediction_grid(seg, seg_ds, None, num_shapes=2, width=80, height=80)
    assert img.shape[0] > 80


def test_auto_backend_falls_back_to_numpy_when_open3d_cannot_render(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no EGL display")

    monkeypatch.setattr(viz_render, "_render_open3d", broken)
    monkeypatch.setattr(viz_render._HOLDER, "failed", None)
    pts, lab = two_blobs(50)
    with pytest.warns(UserWarning, match="numpy point renderer"):
        img = viz.render_points(pts, viz.label_colors(lab), width=64, height=48)
    np.testing.assert_array_equal(
        img, viz.render_points(pts, viz.label_colors(lab), width=64, height=48,
                               backend="numpy"))
    with pytest.raises(RuntimeError, match="no EGL display"):
        viz.render_points(pts, width=64, height=48, backend="open3d")


def test_degenerate_clouds_render():
    for pts in (np.zeros((1, 3)), np.ones((20, 3)), np.array([[0, 0, 0], [1e-9, 0, 0]])):
        img = viz.render_points(pts, width=40, height=40, backend="numpy")
        assert (img != 255).any()


def test_render_labels_with_legend_and_png(tmp_path):
    pts, lab = two_blobs(100)
    img = viz.render_labels(pts, lab, tmp_path / "l.png", label_names=["left", "right"],
                            title="blobs", width=120, height=90, backend="numpy")
    assert (tmp_path / "l.png").is_file() and img.shape[0] > 90 and img.shape[1] >= 120
    # both label colours are drawn (in the render and the legend swatches)
    for c in np.round(viz.palette(2) * 255).astype(int):
        assert (np.abs(img.reshape(-1, 3).astype(int) - c).max(axis=1) <= 2).sum() > 20


@pytest.mark.e2e
def test_importing_pointea_never_loads_open3d():
    code = ("import sys, pointea, pointea.io, pointea.visualization, pointea.cli.predict\n"
            "assert 'open3d' not in sys.modules, 'open3d imported eagerly'\n"
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported eagerly'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def test_tensors_are_accepted():
    pts, lab = two_blobs(30)
    a = viz.render_points(torch.from_numpy(pts), viz.label_colors(torch.from_numpy(lab)),
                          width=40, height=30, backend="numpy")
    b = viz.render_points(pts, viz.label_colors(lab), width=40, height=30, backend="numpy")
    np.testing.assert_array_equal(a, b)


def test_backend_from_environment(monkeypatch):
    def broken(*args, **kwargs):
        raise AssertionError("open3d must not be used")

    monkeypatch.setattr(viz_render, "_render_open3d", broken)
    monkeypatch.setenv("POINTEA_RENDER_BACKEND", "numpy")
    assert viz.render_points(np.zeros((3, 3)), width=16, height=16).shape == (16, 16, 3)
    monkeypatch.setenv("POINTEA_RENDER_BACKEND", "opengl")
    with pytest.raises(ValueError, match="backend"):
        viz.render_points(np.zeros((3, 3)), width=16, height=16)


@pytest.mark.parametrize("backend", BACKENDS)
def test_depth_cue_darkens_far_points_and_keeps_the_hue(backend):
    """Two blobs of one colour, one near the camera and one far: with the depth cue the
    far one is darker (same hue); without it both show the exact colour."""
    rng = np.random.default_rng(0)
    near = rng.normal(scale=0.05, size=(300, 3)) + [-0.5, 0, 0.6]
    far = rng.normal(scale=0.05, size=(300, 3)) + [0.5, 0, -0.6]
    pts = np.vstack([near, far])
    col = np.asarray(viz.PALETTE[1])
    cam = viz.fit_camera(pts, width=200, height=160, azimuth=0, elevation=0)
    kw = dict(width=200, height=160, camera=cam, point_size=5, backend=backend)
    flat = viz.render_points(pts, col, **kw)
    shaded = viz.render_points(pts, col, depth_cue=0.5, **kw)
    _, _, depth = viz.project_points(pts, cam, 200, 160)
    assert depth[:300].mean() < depth[300:].mean()  # "near" really is nearer

    def blob_pixels(img, blob):
        c, r, _ = viz.project_points(blob.mean(axis=0, keepdims=True), cam, 200, 160)
        return pixel_near(img, c[0], r[0]).astype(float)

    c8 = np.round(col * 255)
    for blob in (near, far):
        assert np.abs(blob_pixels(flat, blob) - c8).max(axis=1).mean() <= 2
    near_px, far_px = blob_pixels(shaded, near), blob_pixels(shaded, far)
    assert far_px.sum(axis=1).mean() < 0.7 * near_px.sum(axis=1).mean()
    # hue kept: far pixels are a scaled copy of the colour
    ratio = far_px / np.maximum(c8, 1)
    assert np.ptp(ratio[:, :2], axis=1).mean() < 0.08


def test_height_colours_follow_the_up_axis():
    pts = np.c_[np.zeros(5), np.linspace(-1, 1, 5), np.zeros(5)]
    cols = viz.height_colors(pts, "y")
    np.testing.assert_allclose(cols[0], viz.HEIGHT_RAMP[0])
    np.testing.assert_allclose(cols[-1], viz.HEIGHT_RAMP[-1])
    assert len(np.unique(cols, axis=0)) == 5
    np.testing.assert_allclose(viz.height_colors(pts, "x"), np.tile(viz.HEIGHT_RAMP[2], (5, 1)))
    with pytest.raises(ValueError, match="strength"):
        viz.depth_shade(cols, np.arange(5.0), 1.5)
