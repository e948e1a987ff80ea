"""Data-pipeline benchmark: ModelNet40-sized HDF5 load, cached reload, batch collate+augment.

Writes a synthetic ModelNet40-sized train set in the published HDF5 layout (9840 shapes x
2048 points, ``data`` + ``label`` + ``normal`` keys, 2048 shapes per file), then times:

* the first load through :class:`pointea.datasets.ModelNet40` (read, validate, cache),
* a reload from the processed cache,
* one training batch (``batch_size`` x ``num_points``): per-sample transforms
  (first-N subsampling, PCT scale+shift, point dropout) + PyG collate, as the
  ``DataLoader`` does it with ``num_workers=0``.

Usage::

    python scripts/bench_data.py                 # full size, temporary folder
    python scripts/bench_data.py --shapes 2000   # quicker
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from torch_geometric.data import Batch
from torch_geometric.transforms import Compose

from pointea.datasets import ModelNet40
from pointea.transforms import PCTScaleShift, RandomPointDropout, SubsamplePoints

FOLDER = "modelnet40_ply_hdf5_2048"


def write_modelnet_sized(root: Path, shapes: int, points: int, seed: int = 0) -> float:
    """Write ``shapes`` random unit-sphere clouds as ``ply_data_train*.h5``; returns MB."""
    rng = np.random.default_rng(seed)
    folder = root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "shape_names.txt").write_text("".join(f"class{i}\n" for i in range(40)))
    names, total = [], 0
    for k, start in enumerate(range(0, shapes, 2048)):
        n = min(2048, shapes - start)
        pos = rng.standard_normal((n, points, 3), dtype=np.float32)
        pos /= np.linalg.norm(pos, axis=-1, keepdims=True)
        name = f"ply_data_train{k}.h5"
        with h5py.File(folder / name, "w") as f:
            f.create_dataset("data", data=pos)
            f.create_dataset("label", data=rng.integers(0, 40, (n, 1)).astype(np.uint8))
            f.create_dataset("normal", data=pos)
        names.append(f"data/{FOLDER}/{name}\n")
        total += (folder / name).stat().st_size
    (folder / "train_files.txt").write_text("".join(names))
    (folder / "test_files.txt").write_text(names[-1])
    return total / 2**20


def _time(fn, repeat: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=None, help="folder to write into (temp dir)")
    p.add_argument("--shapes", type=int, default=9840)
    p.add_argument("--points", type=int, default=2048)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-points", type=int, default=1024)
    p.add_argument("--batches", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp)
        t_write, mb = _time(lambda: write_modelnet_sized(root, args.shapes, args.points))
        t_first, ds = _time(lambda: ModelNet40(root, "trainval", force_reload=True))
        t_reload, ds = _time(lambda: ModelNet40(root, "trainval"), repeat=3)
        assert len(ds) == args.shapes

        aug = Compose([SubsamplePoints(args.num_points, "first"), PCTScaleShift(),
                       RandomPointDropout()])
        rng = np.random.default_rng(0)
        get, augment, collate = [], [], []
        for _ in range(args.batches):
            idx = rng.choice(len(ds), size=args.batch_size, replace=False)
            t0 = time.perf_counter()
            samples = [ds[int(i)] for i in idx]
            t1 = time.perf_counter()
            samples = [aug(s) for s in samples]
            t2 = time.perf_counter()
            batch = Batch.from_data_list(samples)
            t3 = time.perf_counter()
            get.append(t1 - t0)
            augment.append(t2 - t1)
            collate.append(t3 - t2)
        assert batch.pos.shape == (args.batch_size * args.num_points, 3)
        fps = SubsamplePoints(args.num_points, "fps")
        t_fps = statistics.median(_time(lambda s=ds[i]: fps(s))[0] for i in range(32))

    ms = lambda xs: 1000 * statistics.median(xs)  # noqa: E731
    per_batch = ms(get) + ms(augment) + ms(collate)
    rows = [
        ("write synthetic HDF5", f"{args.shapes} x {args.points} x 3 (+normals), {mb:.0f} MB",
         f"{t_write:.2f} s"),
        ("first load (read + validate + cache)", "ModelNet40(split='trainval')",
         f"{t_first:.2f} s"),
        ("reload from processed cache", "best of 3", f"{t_reload:.3f} s"),
        ("get samples", f"{args.batch_size} x dataset[i]", f"{ms(get):.2f} ms/batch"),
        ("augment", f"first-{args.num_points} + PCT scale/shift + dropout",
         f"{ms(augment):.2f} ms/batch"),
        ("collate", "Batch.from_data_list", f"{ms(collate):.2f} ms/batch"),
        ("total per batch", f"{args.batch_size} x {args.num_points} points",
         f"{per_batch:.2f} ms"),
        ("(alternative) FPS subsampling", f"{args.points} -> {args.num_points}, one cloud",
         f"{1000 * t_fps:.2f} ms/cloud"),
    ]
    w0, w1 = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    print(f"pointea data pipeline, torch {torch.__version__}, {args.threads} thread(s)\n")
    print(f"| {'step':<{w0}} | {'what':<{w1}} | time |")
    print(f"|{'-' * (w0 + 2)}|{'-' * (w1 + 2)}|------|")
    for a, b, c in rows:
        print(f"| {a:<{w0}} | {b:<{w1}} | {c} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
