"""Shared helpers of the test suite (the one module tests import helpers from).

- paths: :data:`REPO_ROOT`, :data:`TEST_DATA`;
- tiny packed clouds: :func:`make_batch`;
- tiny datasets written in the four published on-disk formats (``write_modelnet_hdf5``,
  ``write_modelnet_resampled``, ``write_shapenet_text``, ``write_shapenet_hdf5``); every
  writer returns the arrays it wrote so tests can compare field by field;
- :class:`HostReads`: counts the places where torch code reads tensor values back to the
  host (on a GPU each such read waits for the device). It sees the Python-level reads
  (``bool(t)``, ``int(t)``, ``.item()``, ``.tolist()``, ...) and the ops whose output size
  depends on values (``nonzero``, boolean-mask indexing, ``bincount``,
  ``repeat_interleave`` without ``output_size``) through a ``TorchFunctionMode``; reads
  inside compiled kernels (torch_cluster's own) are not seen.

pytest fixtures built on these live in ``tests/conftest.py``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from pointea.datasets.shapenetpart import CATEGORY_PARTS, SHAPENET_CATEGORIES
from pointea.nn import ExternalAttention

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = Path(__file__).resolve().parent / "data"


def make_batch(sizes, channels=None, seed=0, device="cpu"):
    """Random packed clouds of the given sizes: (pos, batch[, x])."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(sum(sizes), 3, generator=g) * 2 - 1
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    if channels is None:
        return pos.to(device), batch.to(device)
    return (
        pos.to(device),
        batch.to(device),
        torch.randn(sum(sizes), channels, generator=g).to(device),
    )


# --------------------------------------------------------------------------- datasets
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
                f.create_dataset(
                    "label", data=(lab[:, None] if label_2d else lab).astype(label_dtype)
                )
                f.create_dataset("normal", data=nrm)
                f.create_dataset("faceId", data=np.zeros((n, points), np.int32))
            pos_all.append(pos)
            nrm_all.append(nrm)
            lab_all.append(lab)
            names.append(prefix + name)
        (folder / f"{split}_files.txt").write_text("\n".join(names) + "\n")
        out[split] = {
            "pos": np.concatenate(pos_all),
            "normal": np.concatenate(nrm_all),
            "label": np.concatenate(lab_all).astype(np.int64),
        }
    return out


def write_modelnet_resampled(
    root: Path,
    *,
    train_per_class: int = 3,
    test_per_class: int = 1,
    points: int = 20,
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
                tables.append(
                    np.loadtxt(folder / name / f"{sid}.txt", delimiter=",", dtype=np.float32)
                )
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
        "".join(f"{n}\t{s}\n" for n, s in SHAPENET_CATEGORIES.items())
    )
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
                shapes.append(
                    {
                        "table": np.loadtxt(folder / synset / f"{token}.txt", dtype=np.float32),
                        "category": cat,
                    }
                )
        (folder / "train_test_split" / f"shuffled_{split}_file_list.json").write_text(
            json.dumps(entries)
        )
        out[split] = shapes
    return out


def write_shapenet_hdf5(
    root: Path,
    *,
    per_file: dict[str, tuple[int, ...]] | None = None,
    points: int = 24,
    folder_name: str = SN_HDF5,
    seed: int = 0,
    with_lists: bool = True,
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
        out[split] = {
            "pos": np.concatenate(data_all),
            "label": np.concatenate(lab_all),
            "pid": np.concatenate(pid_all),
        }
    return out


# --------------------------------------------------------------------------- references
def naive_external(layer: ExternalAttention, x: torch.Tensor) -> torch.Tensor:
    """External attention for ONE cloud, written out plainly."""
    q = layer.in_proj(x) if layer.in_proj is not None else x
    n = x.size(0)
    q = q.view(n, layer.heads, layer.head_channels)
    outs = []
    for h in range(layer.heads):
        logits = q[:, h] @ layer.memory_key.weight.t()  # (N, S)
        attn = torch.softmax(logits, dim=0)  # over the points
        attn = attn / (1e-9 + attn.sum(dim=1, keepdim=True))  # over the memory
        mv = (
            layer.memory_key.weight if layer.memory_value is None else layer.memory_value.weight.t()
        )
        outs.append(attn @ mv)  # (N, D)
    out = torch.cat(outs, dim=1)
    return layer.out_proj(out) if layer.out_proj is not None else out


# --------------------------------------------------------------------------- file builders
def ply_bytes(points, fmt="ascii", faces=None, extra_header="", labels=None):
    n = len(points)
    head = [
        "ply",
        f"format {fmt} 1.0",
        "comment test",
        f"element vertex {n}",
        "property float x",
        "property float y",
        "property float z",
    ]
    if labels is not None:
        head.append("property int label")
    if faces is not None:
        head += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    head += [extra_header] if extra_header else []
    head.append("end_header")
    out = ("\n".join(head) + "\n").encode()
    if fmt == "ascii":
        for i, p in enumerate(points):
            row = " ".join(repr(float(v)) for v in p)
            if labels is not None:
                row += f" {int(labels[i])}"
            out += (row + "\n").encode()
        for f in faces or []:
            out += (f"{len(f)} " + " ".join(map(str, f)) + "\n").encode()
    else:
        e = "<" if fmt == "binary_little_endian" else ">"
        for i, p in enumerate(points):
            out += struct.pack(e + "3f", *p)
            if labels is not None:
                out += struct.pack(e + "i", int(labels[i]))
        for f in faces or []:
            out += struct.pack(e + "B", len(f)) + struct.pack(e + f"{len(f)}i", *f)
    return out


def pcd_bytes(points, mode="ascii", fields="x y z", extra=None):
    cols = [points] + ([extra] if extra is not None else [])
    table = np.column_stack(cols).astype(np.float32)
    k = table.shape[1]
    head = [
        "# .PCD v0.7",
        "VERSION 0.7",
        f"FIELDS {fields}",
        "SIZE " + " ".join(["4"] * k),
        "TYPE " + " ".join(["F"] * k),
        "COUNT " + " ".join(["1"] * k),
        f"WIDTH {len(points)}",
        "HEIGHT 1",
        "VIEWPOINT 0 0 0 1 0 0 0",
        f"POINTS {len(points)}",
        f"DATA {mode}",
    ]
    out = ("\n".join(head) + "\n").encode()
    if mode == "ascii":
        out += "\n".join(" ".join(repr(float(v)) for v in r) for r in table).encode() + b"\n"
    else:
        out += table.astype("<f4").tobytes()
    return out


def off_text(v, faces, header="OFF"):
    lines = [header, f"{len(v)} {len(faces)} 0"] if header == "OFF" else [header]
    lines += [" ".join(map(str, p)) for p in v]
    lines += [f"{len(f)} " + " ".join(map(str, f)) for f in faces]
    return "\n".join(lines) + "\n"


def stl_binary(tris, header=b"binary stl"):
    out = header.ljust(80, b" ") + struct.pack("<I", len(tris))
    for t in tris:
        out += struct.pack("<3f", 0, 0, 1) + struct.pack("<9f", *np.ravel(t)) + b"\0\0"
    return out


def stl_ascii(tris):
    s = "solid t\n"
    for t in tris:
        s += " facet normal 0 0 1\n  outer loop\n"
        s += "".join(f"   vertex {a} {b} {c}\n" for a, b, c in t)
        s += "  endloop\n endfacet\n"
    return s + "endsolid t\n"


# ------------------------------------------------------------------ PCT_Pytorch checkpoints
# The public checkpoint's 113 keys with shapes and dtypes (a copy of the project's
# shared/pct_pytorch_checkpoint_keys.tsv).
KEYS_TSV = TEST_DATA / "pct_pytorch_checkpoint_keys.tsv"


def pct_keys():
    """(key, shape, dtype) rows of the public checkpoint's 113 keys."""
    rows = []
    for line in KEYS_TSV.read_text().splitlines()[1:]:
        key, shape, dtype = line.split("\t")
        dims = tuple(int(d) for d in shape.strip("()").split(",") if d.strip())
        rows.append((key, dims, dtype))
    return rows


def fake_pct_state_dict(seed=0):
    """A state dict with exactly the public checkpoint's keys, shapes and dtypes."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape, dtype in pct_keys():
        if dtype == "int64":
            state[key] = torch.tensor(7, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.1
    for i in range(1, 5):  # query and key projections share one tensor in PCT
        state[f"module.pt_last.sa{i}.k_conv.weight"] = state[f"module.pt_last.sa{i}.q_conv.weight"]
    return state


# --------------------------------------------------------------------------- host reads
_READS = {
    "__bool__",
    "__int__",
    "__float__",
    "__index__",
    "item",
    "tolist",
    "equal",
    "nonzero",
    "unique",
    "unique_consecutive",
    "masked_select",
    "bincount",
}


class HostReads(TorchFunctionMode):
    """``with HostReads() as reads: ...``; then ``reads.names`` lists what was read."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in _READS:
            self.names.append(name)
        elif name == "repeat_interleave" and "output_size" not in kwargs:
            repeats = args[1] if len(args) > 1 else kwargs.get("repeats")
            if isinstance(repeats, torch.Tensor) and repeats.numel() > 1:
                self.names.append(name)
        elif name == "__getitem__" and _has_bool_mask(args[1] if len(args) > 1 else None):
            self.names.append("mask_index")
        return func(*args, **kwargs)


def _has_bool_mask(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)


# -- scenes: a tiny scene segmenter and a room with colours and labels -------------------
SEMSEG_TINY = dict(embed_channels=16, fuse_channels=32, category_channels=8, head_channels=(32, 16))


def write_semseg_checkpoint(path: Path, *, attention: str = "external", seed: int = 0) -> Path:
    """A ``pct_semseg_tiny`` saved as a training checkpoint (the engine's format, the 13
    S3DIS class names), fitted for 12 steps to a room whose class follows height and
    colour, so that its predictions vary from point to point (an untrained one predicts
    one class everywhere, which would make comparisons weak). Seconds on a CPU."""
    from pointea.datasets.s3dis import CLASSES
    from pointea.models import create_model
    from pointea.models.semseg import room_features
    from pointea.serialization import atomic_torch_save

    torch.manual_seed(seed)
    model = create_model("pct_semseg_tiny", attention=attention, **SEMSEG_TINY)
    xyz, rgb, _ = scene_arrays(256, seed=seed + 1)
    target = np.digitize(xyz[:, 2], [1.5, 2.5]) + 3 * (rgb[:, 0] > 127)  # classes 0..5
    pos, x = room_features(torch.from_numpy(xyz), torch.from_numpy(rgb))
    y = torch.from_numpy(target).long()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(12):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x, pos), y).backward()
        opt.step()
    model.eval()
    atomic_torch_save(
        {
            "format": "pointea-checkpoint",
            "format_version": 1,
            "task": "semseg",
            "model_name": model.name,
            "model_config": model.hparams,
            "model": model.state_dict(),
            "epoch": 1,
            "global_step": 1,
            "config": {"num_points": 256},
            "class_names": list(CLASSES),
            "metrics": {},
        },
        path,
    )
    return path


def write_classifier_checkpoint(
    path: Path, class_names: list[str] | tuple[str, ...] = ("a", "b", "c"), *, seed: int = 0
) -> Path:
    """An untrained ``pct_cls_tiny`` saved as a training checkpoint with ``class_names``
    (``num_points`` 64)."""
    from pointea.models import create_model
    from pointea.serialization import atomic_torch_save

    torch.manual_seed(seed)
    model = create_model("pct_cls_tiny", num_classes=len(class_names)).eval()
    atomic_torch_save(
        {
            "format": "pointea-checkpoint",
            "format_version": 1,
            "task": "classification",
            "model_name": model.name,
            "model_config": model.hparams,
            "model": model.state_dict(),
            "epoch": 1,
            "global_step": 1,
            "config": {"num_points": 64},
            "class_names": list(class_names),
            "metrics": {},
        },
        path,
    )
    return path


def scene_arrays(n: int = 700, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 6 x 4 x 3 m room away from the origin: ``xyz`` (n, 3) float64 on a millimetre
    grid (exact in text and float32), ``rgb`` (n, 3) uint8 and ``labels`` (n,) 0..12."""
    rng = np.random.default_rng(seed)
    xyz = np.round(rng.random((n, 3)) * [6.0, 4.0, 3.0] + [10.0, -3.0, 0.5], 3)
    rgb = rng.integers(0, 256, size=(n, 3)).astype(np.uint8)
    labels = rng.integers(0, 13, size=n)
    return xyz, rgb, labels


def write_scene_txt(path: Path, xyz, rgb, labels=None, header: str = "") -> Path:
    """S3DIS rows ``x y z r g b [label]`` (colours 0..255 integers)."""
    cols = [xyz, rgb.astype(np.int64)] + ([labels[:, None]] if labels is not None else [])
    table = np.column_stack(cols)
    fmt = "%.3f %.3f %.3f %d %d %d" + (" %d" if labels is not None else "")
    with open(path, "w") as f:
        f.write(header)
        np.savetxt(f, table, fmt=fmt)
    return path


def nontrivial_segmenter(seed=0, **kwargs):
    """An eval-mode ``pct_seg_tiny`` (9 parts, 3 categories) whose BatchNorms are not the
    identity: random running statistics and affine weights of both signs, so folded and
    unfolded evaluation differ when the folding is wrong."""
    from pointea.models import create_model

    model = create_model("pct_seg_tiny", num_parts=9, num_categories=3, **kwargs).eval()
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
            m.weight.data.uniform_(-1.5, 1.5, generator=g)  # negative scales fold too
    return model
