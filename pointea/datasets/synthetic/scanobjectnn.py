"""An offline stand-in for ScanObjectNN in the release's exact layout.

``write_scanobjectnn(root)`` writes ``root/h5_files/main_split{,_nobg}/`` with the five
h5 files of the three variants (:mod:`pointea.datasets.scanobjectnn`): 15 classes of
procedural objects (the classification stand-in's twelve builders and three more),
``data`` (n, points, 3) float32, ``label`` (n,) int64 and ``mask`` (n, points) int8 (1
on the object, -1 on the background, as the release marks it). ``main_split`` objects
stand on a floor patch with a wall piece behind them (a quarter of their points);
PB_T50_RS repeats each training object five times, each copy rotated about the up axis,
scaled by U[0.75, 1.25] and shifted by up to half its size, then put back into the unit
sphere. A smoke test for the pipeline, not a benchmark: its numbers say nothing about
ScanObjectNN. """

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..scanobjectnn import CLASSES, VARIANTS
from .primitives import Part, Rng
from .shapes import CLASSIFICATION_CLASSES, sample_shape
from .writers import check_sizes, new_folder, read_marker, write_marker

__all__ = ["write_scanobjectnn"]

FOLDER = "h5_files"
GENERATOR_VERSION = 1
_COPIES = 5  # PB_T50_RS: perturbed copies of each object


def _b_shelf(rng: Rng) -> list[Part]:
    w, h, d = rng.uniform(0.8, 1.4), rng.uniform(1.2, 2.0), rng.uniform(0.3, 0.5)
    boards = int(rng.integers(3, 6))
    parts = [Part("box", {"size": (0.04, h, d)}, "side", (s * w / 2, h / 2, 0)) for s in (-1, 1)]
    for k in range(boards):
        parts.append(Part("box", {"size": (w, 0.03, d)}, "board", (0, k * h / (boards - 1), 0)))
    return parts


def _b_bed(rng: Rng) -> list[Part]:
    w, length = rng.uniform(1.0, 1.8), rng.uniform(1.8, 2.2)
    h = rng.uniform(0.3, 0.5)
    head = rng.uniform(0.5, 0.9)
    return [
        Part("box", {"size": (w, h, length)}, "mattress", (0, h / 2, 0)),
        Part("box", {"size": (w, head, 0.06)}, "head", (0, head / 2, -length / 2)),
    ]


def _b_sofa(rng: Rng) -> list[Part]:
    w, d, h = rng.uniform(1.4, 2.2), rng.uniform(0.7, 0.9), rng.uniform(0.35, 0.45)
    back, arm = rng.uniform(0.35, 0.5), rng.uniform(0.15, 0.25)
    return [
        Part("box", {"size": (w, h, d)}, "seat", (0, h / 2, 0)),
        Part("box", {"size": (w, back, 0.15)}, "back", (0, h + back / 2, -d / 2 + 0.075)),
        *(
            Part("box", {"size": (0.15, arm, d)}, "arm", (s * (w / 2 - 0.075), h + arm / 2, 0))
            for s in (-1, 1)
        ),
    ]


#: one builder per label, in :data:`~pointea.datasets.scanobjectnn.CLASSES` order
BUILDERS = [*CLASSIFICATION_CLASSES.values(), _b_shelf, _b_bed, _b_sofa]


def _background(n: int, rng: Rng) -> np.ndarray:
    """``n`` points of a floor patch below the object and a wall piece behind it."""
    floor = int(n * rng.uniform(0.5, 0.8))
    pts = np.empty((n, 3))
    pts[:floor] = np.column_stack(
        [rng.uniform(-1.2, 1.2, floor), np.full(floor, -1.0), rng.uniform(-1.2, 1.2, floor)]
    )
    wall = n - floor
    pts[floor:] = np.column_stack(
        [rng.uniform(-1.2, 1.2, wall), rng.uniform(-1.0, 0.6, wall), np.full(wall, -1.1)]
    )
    return pts + rng.normal(scale=0.01, size=pts.shape)


def _unit_sphere(pts: np.ndarray) -> np.ndarray:
    pts = pts - pts.mean(0)
    return pts / max(float(np.linalg.norm(pts, axis=1).max()), 1e-9)


def _objects(
    labels: np.ndarray, points: int, rng: Rng
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each label's object alone, with background, and the background mask."""
    n = labels.size
    alone = np.zeros((n, points, 3), np.float32)
    scene = np.zeros((n, points, 3), np.float32)
    mask = np.zeros((n, points), np.int64)
    for i, c in enumerate(labels):
        pts = sample_shape(BUILDERS[int(c)](rng), points, rng)[0]
        alone[i] = pts
        keep = points - points // 4
        both = np.concatenate([pts[:keep], _background(points - keep, rng)])
        order = rng.permutation(points)
        scene[i] = _unit_sphere(both[order])
        mask[i] = np.where(order < keep, 1, -1)
    return alone, scene, mask


def _perturb(scene: np.ndarray, rng: Rng) -> np.ndarray:
    """PB_T50_RS-like copies: rotated about y, scaled, shifted, back in the unit sphere."""
    out = np.empty_like(scene)
    for i, pts in enumerate(scene):
        a = rng.uniform(0, 2 * np.pi)
        rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
        moved = (pts @ rot.T) * rng.uniform(0.75, 1.25) + rng.uniform(-0.5, 0.5, size=3)
        out[i] = _unit_sphere(moved)
    return out


def _write_h5(path: Path, data: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=data.astype(np.float32))
        f.create_dataset("label", data=labels.astype(np.int64))
        f.create_dataset("mask", data=mask.astype(np.int8))


def write_scanobjectnn(
    root: str | os.PathLike,
    *,
    train_per_class: int = 20,
    test_per_class: int = 6,
    points: int = 2048,
    seed: int = 0,
    overwrite: bool = False,
    reuse: bool = False,
) -> Path:
    """Write the stand-in under ``root/h5_files`` unless the same one is there.

    Args:
        root: the folder to pass to :class:`~pointea.datasets.ScanObjectNN`.
        train_per_class / test_per_class: objects per class in each file.
        points: points per object (2048 like the release).
        seed: everything is a deterministic function of it.
        overwrite: replace a folder already there that pointea did not write (without
            it, such a folder is an error). A stand-in written with other sizes or seed
            is replaced.
        reuse: keep any stand-in of this generator version already there, whatever
            its sizes and seed (what training with ``--synthetic`` does).

    Returns:
        ``root``.
    """
    check_sizes(train_per_class=train_per_class, test_per_class=test_per_class, points=points)
    params = {"train_per_class": train_per_class, "test_per_class": test_per_class,
              "points": points, "generator_version": GENERATOR_VERSION}  # fmt: skip
    root = Path(root).expanduser()
    final = root / FOLDER
    marker = read_marker(final)
    if marker is not None and marker.get("params") == params and marker.get("seed") == seed:
        return root
    current = marker is not None and marker.get("params", {}).get("generator_version") == (
        GENERATOR_VERSION
    )
    if reuse and current:
        return root
    with new_folder(final, overwrite or marker is not None) as tmp:
        for published, per_class, offset in (("training", train_per_class, 0),
                                             ("test", test_per_class, 1)):  # fmt: skip
            rng = np.random.default_rng([seed, offset, 7])
            labels = np.repeat(np.arange(len(CLASSES)), per_class)
            labels = labels[rng.permutation(labels.size)]
            alone, scene, mask = _objects(labels, points, rng)
            for variant, (folder, suffix) in VARIANTS.items():
                (tmp / folder).mkdir(exist_ok=True)
                path = tmp / folder / f"{published}_objectdataset{suffix}.h5"
                if variant == "obj_only":
                    _write_h5(path, alone, labels, np.ones_like(mask))
                elif variant == "obj_bg":
                    _write_h5(path, scene, labels, mask)
                else:
                    copies = _COPIES if published == "training" else 1
                    data = np.concatenate([_perturb(scene, rng) for _ in range(copies)])
                    _write_h5(path, data, np.tile(labels, copies), np.tile(mask, (copies, 1)))
        write_marker(tmp, "scanobjectnn", seed, params)
    return root
