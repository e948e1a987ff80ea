"""Tiny dataset fixtures written in the four published on-disk formats.

Import the helpers directly (``from fixtures_data import write_modelnet_hdf5``), or make
the pytest fixtures global by adding to ``tests/conftest.py``::

    from fixtures_data import (  # noqa: F401
        modelnet_hdf5_root, modelnet_resampled_root, shapenet_text_root, shapenet_hdf5_root,
    )

Every writer returns the arrays it wrote so tests can compare field by field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from pointea.datasets.shapenetpart import CATEGORY_PARTS, SHAPENET_CATEGORIES

MN_HDF5 = "modelnet40_ply_hdf5_2048"
MN_RESAMPLED = "modelnet40_normal_resampled"
SN_TEXT = "shapenetcore_partanno_segmentation_benchmark_v0_normal"
SN_HDF5 = "shapenet_part_seg_hdf5_data"
CLASS_NAMES = ["airplane", "bathtub", "bed", "night_stand"]


def _cloud(rng: np.random.Generator, n: int, points: int) -> np.ndarray:
    pos = rng.normal(size=(n, points, 3)).astype(np.float32)
    return pos / np.linalg.norm(pos, axis=-1, keepdims=True).max(axis=1, keepdims=True)


def write_modelnet_hdf5(
    root: Path,
    *,
    per_file: tuple[int, ...] = (10, 6),
    test_per_file: tuple[int, ...] = (5,),
    points: int = 32,
    label_dtype: Any = np.uint8,
    label_2d: bool = True,
    prefix: str = f"data/{MN_HDF5}/",
    seed: int = 0,
) -> dict[str, Any]:
    """``root/modelnet40_ply_hdf5_2048`` with the published keys, lists and prefix."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / MN_HDF5
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "shape_names.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    out: dict[str, Any] = {"folder": folder}
    for split, sizes in (("train", per_file), ("test", test_per_file)):
        pos_all, nrm_all, lab_all, names = [], [], [], []
        for k, n in enumerate(sizes):
            pos = _cloud(rng, n, points)
            nrm = rng.normal(size=(n, points, 3)).astype(np.float32)
            lab = np.arange(n) % len(CLASS_NAMES)
            rng.shuffle(lab)
            name = f"ply_data_{split}{k}.h5"
            with h5py.File(folder / name, "w") as f:
                f.create_dataset("data", data=pos)
                f.create_dataset("label", data=(lab[:, None] if label_2d else lab).astype(
                    label_dtype))
                f.create_dataset("normal", data=nrm)
                f.create_dataset("faceId", data=np.zeros((n, points), np.int32))
            pos_all.append(pos)
            nrm_all.append(nrm)
            lab_all.append(lab)
            names.append(prefix + name)
        (folder / f"{split}_files.txt").write_text("\n".join(names) + "\n")
        out[split] = {"pos": np.concatenate(pos_all), "normal": np.concatenate(nrm_all),
                      "label": np.concatenate(lab_all).astype(np.int64)}
    return out


def write_modelnet_resampled(
    root: Path, *, train_per_class: int = 3, test_per_class: int = 1, points: int = 20,
    seed: int = 0,
) -> dict[str, Any]:
    """``root/modelnet40_normal_resampled`` with comma-separated ``x,y,z,nx,ny,nz`` files."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / MN_RESAMPLED
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "modelnet40_shape_names.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    out: dict[str, Any] = {"folder": folder}
    counter = 0
    for split, per in (("train", train_per_class), ("test", test_per_class)):
        ids, tables, labels = [], [], []
        for c, name in enumerate(CLASS_NAMES):
            (folder / name).mkdir(exist_ok=True)
            for _ in range(per):
                counter += 1
                sid = f"{name}_{counter:04d}"
                table = rng.uniform(-1, 1, size=(points, 6)).astype(np.float32)
                np.savetxt(folder / name / f"{sid}.txt", table, fmt="%.6f", delimiter=",")
                ids.append(sid)
                tables.append(np.loadtxt(folder / name / f"{sid}.txt", delimiter=",",
                                         dtype=np.float32))
                labels.append(c)
        (folder / f"modelnet40_{split}.txt").write_text("\n".join(ids) + "\n")
        out[split] = {"ids": ids, "tables": tables, "label": np.array(labels)}
    return out


def _shapenet_shape(rng: np.random.Generator, cat: int, points: int) -> np.ndarray:
    parts = CATEGORY_PARTS[cat]
    table = np.zeros((points, 7), np.float32)
    table[:, :6] = rng.uniform(-1, 1, size=(points, 6))
    table[:, 6] = rng.choice(parts, size=points)
    return table


def write_shapenet_text(
    root: Path,
    *,
    categories: tuple[str, ...] = ("Airplane", "Chair", "Mug"),
    per_split: dict[str, int] | None = None,
    points: tuple[int, int] = (20, 40),
    seed: int = 0,
) -> dict[str, Any]:
    """``root/shapenetcore_partanno_segmentation_benchmark_v0_normal`` (text format)."""
    per_split = per_split or {"train": 3, "val": 1, "test": 2}
    rng = np.random.default_rng(seed)
    folder = Path(root) / SN_TEXT
    (folder / "train_test_split").mkdir(parents=True, exist_ok=True)
    (folder / "synsetoffset2category.txt").write_text(
        "".join(f"{n}\t{s}\n" for n, s in SHAPENET_CATEGORIES.items()))
    names = list(SHAPENET_CATEGORIES)
    out: dict[str, Any] = {"folder": folder}
    k = 0
    for split, count in per_split.items():
        entries, shapes = [], []
        for name in categories:
            synset = SHAPENET_CATEGORIES[name]
            (folder / synset).mkdir(exist_ok=True)
            cat = names.index(name)
            for _ in range(count):
                k += 1
                token = f"{k:08x}deadbeef"
                table = _shapenet_shape(rng, cat, int(rng.integers(*points)))
                np.savetxt(folder / synset / f"{token}.txt", table, fmt="%.6f")
                entries.append(f"shape_data/{synset}/{token}")
                shapes.append({"table": np.loadtxt(folder / synset / f"{token}.txt",
                                                   dtype=np.float32), "category": cat})
        (folder / "train_test_split" / f"shuffled_{split}_file_list.json").write_text(
            json.dumps(entries))
        out[split] = shapes
    return out


def write_shapenet_hdf5(
    root: Path, *, per_file: dict[str, tuple[int, ...]] | None = None, points: int = 24,
    folder_name: str = SN_HDF5, seed: int = 0, with_lists: bool = True,
) -> dict[str, Any]:
    """``root/shapenet_part_seg_hdf5_data`` with ``data``, ``label``, ``pid`` keys."""
    per_file = per_file or {"train": (4, 3), "val": (2,), "test": (3,)}
    rng = np.random.default_rng(seed)
    folder = Path(root) / folder_name
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"folder": folder}
    for split, sizes in per_file.items():
        names, data_all, lab_all, pid_all = [], [], [], []
        for k, n in enumerate(sizes):
            label = rng.integers(0, 16, size=n)
            pid = np.stack([rng.choice(CATEGORY_PARTS[c], size=points) for c in label])
            data = _cloud(rng, n, points)
            name = f"ply_data_{split}{k}.h5"
            with h5py.File(folder / name, "w") as f:
                f.create_dataset("data", data=data)
                f.create_dataset("label", data=label.astype(np.uint8)[:, None])
                f.create_dataset("pid", data=pid.astype(np.uint8))
            names.append(name)
            data_all.append(data)
            lab_all.append(label)
            pid_all.append(pid)
        if with_lists:
            (folder / f"{split}_hdf5_file_list.txt").write_text("\n".join(names) + "\n")
        out[split] = {"pos": np.concatenate(data_all), "label": np.concatenate(lab_all),
                      "pid": np.concatenate(pid_all)}
    return out


@pytest.fixture
def modelnet_hdf5_root(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    return tmp_path, write_modelnet_hdf5(tmp_path)


@pytest.fixture
def modelnet_resampled_root(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    return tmp_path, write_modelnet_resampled(tmp_path)


@pytest.fixture
def shapenet_text_root(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    return tmp_path, write_shapenet_text(tmp_path)


@pytest.fixture
def shapenet_hdf5_root(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    return tmp_path, write_shapenet_hdf5(tmp_path)
