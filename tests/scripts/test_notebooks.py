"""Every notebook runs headless from top to bottom (nbclient), so none can rot.

The notebooks read their settings from environment variables; here they get tiny
checkpoints trained for one epoch by the engine on a tiny synthetic set.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import nbclient
import nbformat
import pytest
from pointea_testing import REPO_ROOT as REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
TINY = ["--batch-size", "4", "--num-points", "64", "--no-progress", "--epochs", "1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One-epoch classification and segmentation runs: {task: best.pt}."""
    from pointea.cli.train import main, main_seg
    from pointea.datasets import ensure_synthetic

    base = tmp_path_factory.mktemp("nb")
    cls_data = ensure_synthetic(
        "modelnet40",
        root=base / "cls",
        num_classes=3,
        train_per_class=4,
        test_per_class=3,
        points=96,
    )
    seg_data = ensure_synthetic(
        "shapenetpart",
        root=base / "seg",
        categories=["Mug", "Chair"],
        train_per_category=3,
        val_per_category=1,
        test_per_category=3,
        points=96,
    )
    out = {}
    assert (
        main(
            [
                "--data-root",
                str(cls_data),
                "--model",
                "pct_cls_tiny",
                *TINY,
                "--output-dir",
                str(base / "run_cls"),
            ]
        )
        == 0
    )
    assert (
        main_seg(
            [
                "--data-root",
                str(seg_data),
                "--model",
                "pct_seg_tiny",
                *TINY,
                "--output-dir",
                str(base / "run_seg"),
            ]
        )
        == 0
    )
    out["classification"] = base / "run_cls" / "checkpoints" / "best.pt"
    out["segmentation"] = base / "run_seg" / "checkpoints" / "best.pt"
    # The same segmenter as a save_pretrained folder (no record of its data).
    from pointea.models import load_model
    from pointea.models.hub import save_pretrained

    model, _ = load_model(out["segmentation"])
    out["segmentation_pretrained"] = save_pretrained(model, base / "seg_pretrained", num_points=64)
    out["segmentation_data"] = seg_data
    return out


def execute(path: Path, env: dict[str, str], cwd: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    old = dict(os.environ)
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        client = nbclient.NotebookClient(
            nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
        )
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def images(nb: nbformat.NotebookNode) -> list[bytes]:
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                found.append(base64.b64decode(data["image/png"]))
    return found


def stream_text(nb: nbformat.NotebookNode) -> str:
    return "".join(
        o.get("text", "")
        for c in nb.cells
        for o in c.get("outputs", [])
        if o.get("output_type") == "stream"
    )


def test_notebooks_are_committed_without_outputs():
    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name


@pytest.mark.slow
@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_visualize_predictions_runs(runs, task, tmp_path):
    out_dir = tmp_path / "out"
    env = {
        "POINTEA_CHECKPOINT": str(runs[task]),
        "POINTEA_NUM_SHAPES": "4",
        "POINTEA_MAX_EVAL": "5",
        "POINTEA_OUTPUT_DIR": str(out_dir),
    }
    if task == "segmentation":  # a pretrained folder: the data root comes from the env
        env.update(
            POINTEA_CHECKPOINT=str(runs["segmentation_pretrained"]),
            POINTEA_DATA_ROOT=str(runs["segmentation_data"]),
            POINTEA_MAX_EVAL="",
        )
    nb = execute(REPO / "notebooks" / "visualize_predictions.ipynb", env, cwd=REPO / "notebooks")
    pngs = images(nb)
    assert len(pngs) >= 2 and all(p[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    text = stream_text(nb)
    assert ("overall accuracy" in text) if task == "classification" else ("instance mIoU" in text)
    assert f"test split: {5 if task == 'classification' else 6} shapes" in text
    for noise in ("Filament", "EGL", "Open3D", "WebVisualizer"):  # open3d start-up lines
        assert noise not in text, noise
    assert (out_dir / "prediction_grid.png").is_file()
    assert any(out_dir.glob("shape0_*.ply"))
    # the interactive view is shown inline, plotly.js included (no network needed)
    html = [
        o["data"]["text/html"]
        for c in nb.cells
        for o in c.get("outputs", [])
        if "text/html" in o.get("data", {})
    ]
    assert any("Plotly.newPlot" in "".join(h) and "<script src=" not in "".join(h) for h in html)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_external_attention_notebook_runs(runs, task, tmp_path):
    nb = execute(
        REPO / "notebooks" / "external_attention.ipynb",
        {"POINTEA_CHECKPOINT": str(runs[task])},
        cwd=REPO,
    )
    assert len(images(nb)) == 3  # cost plot, memory-unit grid, strongest-unit render
    text = stream_text(nb)
    assert "FAILED" not in text and f"({task})" in text
    assert "memory units are some point's strongest" in text
    assert "Filament" not in text and "Open3D" not in text
