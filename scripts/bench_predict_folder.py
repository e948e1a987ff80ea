"""Where `pointea-predict` spends its time on a folder of meshes: parsing or the model.

    python scripts/bench_predict_folder.py                # 200 OBJ exports of ~1 MB
    python scripts/bench_predict_folder.py --files 300 --faces 45000 --model pct_cls

Writes ``--files`` OBJ meshes shaped like modelling-tool exports (several objects and
groups, ``mtllib``/``usemtl``, texture coordinates and normals, ``v/vt/vn`` faces, quads),
then times, per file and in one process: reading the file and sampling its surface
(``pointea.io.load_points``, what ``pointea-predict`` does first) and classifying the
sampled cloud (``Predictor.classify``, an untrained classifier of the published width).
Prints the split. Everything is generated offline in a temporary folder.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def write_export(path: Path, faces: int, rng: np.random.Generator) -> None:
    """A multi-part OBJ of about ``faces`` triangles, as modelling tools write them."""
    parts = 4
    lines = ["# exported by a modelling tool", "mtllib model.mtl"]
    base = 0
    for p in range(parts):
        n = max(2, int(np.sqrt(faces / parts / 2)))  # an n x n grid of quads per part
        u, v = np.meshgrid(np.linspace(0, 2 * np.pi, n), np.linspace(0.1, np.pi - 0.1, n))
        r = 1 + 0.1 * rng.standard_normal(u.shape)
        xyz = np.stack([r * np.sin(v) * np.cos(u), r * np.sin(v) * np.sin(u), r * np.cos(v)], -1)
        xyz = xyz.reshape(-1, 3) * (0.3 + 0.2 * p) + p
        lines += [f"o part_{p}", f"g group_{p}", f"usemtl material_{p}"]
        lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in xyz]
        lines += [f"vt {a:.5f} {b:.5f}" for a, b in rng.random((len(xyz), 2))]
        lines += [
            f"vn {x:.5f} {y:.5f} {z:.5f}" for x, y, z in xyz / np.linalg.norm(xyz, axis=1)[:, None]
        ]
        idx = np.arange(n * n).reshape(n, n) + base + 1
        quads = np.stack([idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]], -1).reshape(
            -1, 4
        )
        lines += ["f " + " ".join(f"{i}/{i}/{i}" for i in q) for q in quads]
        base += len(xyz)
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    ap.add_argument("--files", type=int, default=200, help="meshes to write and predict")
    ap.add_argument("--faces", type=int, default=45000, help="triangles per mesh (about)")
    ap.add_argument("--model", default="pct_cls", help="registry name of the classifier")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from pointea.inference import Predictor
    from pointea.io import load_points
    from pointea.models import create_model, save_pretrained

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i in range(args.files):
            write_export(folder / f"model_{i:04d}.obj", args.faces, rng)
        files = sorted(folder.glob("*.obj"))
        mb = sum(f.stat().st_size for f in files) / 2**20
        model = create_model(args.model, num_classes=40).eval()
        predictor = Predictor.from_pretrained(
            save_pretrained(model, folder / "model", num_points=1024), device="cpu"
        )
        read_s, model_s = [], []
        for f in files:
            t = time.perf_counter()
            cloud = load_points(f, 1024)
            read_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            predictor.classify(cloud.points, source=str(f))
            model_s.append(time.perf_counter() - t)
    total_read, total_model = sum(read_s), sum(model_s)
    print(
        f"{len(files)} OBJ files, {mb:.0f} MB in all ({mb / len(files):.2f} MB each), "
        f"model {args.model}, {args.threads} threads"
    )
    print("| step | total | per file (median) | share |")
    print("| --- | --- | --- | --- |")
    for name, xs, tot in (
        ("read + sample the surface", read_s, total_read),
        ("classify (model)", model_s, total_model),
    ):
        print(
            f"| {name} | {tot:.1f} s | {1000 * statistics.median(xs):.0f} ms | "
            f"{100 * tot / (total_read + total_model):.0f} % |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
