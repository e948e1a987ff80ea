"""The interactive HTML view: self-contained (no network), and drawn by a real browser."""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pytest

from pointea import visualization as viz

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Under CI (scripts/test.sh installs chromium) a missing browser is a failure, not a skip.
NO_BROWSER = CHROMIUM is None and not os.environ.get("CI")


def two_parts(n: int = 400):
    pts = np.random.default_rng(0).normal(size=(n, 3))
    return pts, np.where(pts[:, 0] > 0, 13, 12)  # two Chair parts


def test_page_is_self_contained_with_hover_names(tmp_path):
    pts, lab = two_parts()
    fig = viz.labeled_figure(pts, lab, category="Chair", title="a <chair>")
    page = viz.write_html(tmp_path / "p.html", [fig, viz.cloud_figure(pts)], title="run")
    text = page.read_text()
    assert not re.search(r"<script[^>]+src=", text)  # plotly.js inlined, nothing fetched
    assert text.count("Plotly.newPlot") == 2 and "a &lt;chair&gt;" in text
    data = fig.to_plotly_json()["data"][0]
    assert set(data["hovertext"]) == {"back", "seat"}
    assert len(text) > 1_000_000  # plotly.js itself is in the page


def screenshot(html, png, size=(900, 700)):
    """The library's headless-Chromium screenshot, as pixels."""
    shot = viz.screenshot_html(html, png, size)
    assert shot is not None, "chromium drew nothing"
    from matplotlib.image import imread

    return (imread(shot)[..., :3] * 255).round().astype(int)


@pytest.mark.slow
@pytest.mark.skipif(NO_BROWSER, reason="chromium is not installed "
                    "(apt-get install -y chromium); scripts/test.sh installs it")
def test_chromium_draws_the_points_without_network(tmp_path):
    pts, lab = two_parts()
    page = viz.write_html(tmp_path / "p.html",
                          viz.labeled_figure(pts, lab, category="Chair", title="chair"))
    img = screenshot(page, tmp_path / "shot.png")
    assert img.std() > 5  # not blank
    # the points themselves were drawn (WebGL), in both part colours
    for col in viz.part_colors(np.array([12, 13]), "Chair"):
        c8 = np.round(col * 255).astype(int)
        assert (np.abs(img - c8).max(axis=2) <= 12).sum() > 200, c8


@pytest.mark.slow
@pytest.mark.skipif(NO_BROWSER, reason="chromium is not installed "
                    "(apt-get install -y chromium); scripts/test.sh installs it")
def test_predict_html_page_for_every_input(tmp_path, capsys):
    import torch

    from pointea.cli.predict import main
    from pointea.models import create_model, save_pretrained

    torch.manual_seed(0)
    model = create_model("pct_cls_tiny", num_classes=2).eval()
    folder = save_pretrained(model, tmp_path / "m", class_names=["cube", "ball"], num_points=64)
    files = []
    for i in range(2):
        f = tmp_path / f"c{i}.xyz"
        pts = np.random.default_rng(i).normal(size=(200, 3))
        f.write_text("\n".join(" ".join(map(str, p)) for p in pts))
        files.append(str(f))
    out = tmp_path / "pred.html"
    rc = main([str(folder), *files, "--json", "--html", str(out)])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["html"] == str(out)
    text = out.read_text()
    assert text.count("Plotly.newPlot") == 2 and "c0.xyz" in text and "c1.xyz" in text
    img = screenshot(out, tmp_path / "shot.png")
    assert img.std() > 5
