"""S3DIS (Stanford Large-Scale Indoor Spaces) read exactly as published, room by room.

Layout of ``Stanford3dDataset_v1.2_Aligned_Version`` (http://buildingparser.stanford.edu/):

.. code-block:: text

    Area_1/ ... Area_6/
        <room>/                    office_1, conferenceRoom_2, hallway_6, ...
            <room>.txt             every point of the room, rows "x y z r g b", no labels
            Annotations/
                <class>_<k>.txt    the points of one object, rows "x y z r g b"

The label of a point is the class of the annotation file that holds it (13 classes,
:data:`CLASSES`). ``stairs_<k>.txt`` files (a few rooms) are read as ``clutter``, as
PointNet's ``indoor3d_util.collect_point_label`` and the loaders derived from it do.

The published release has quirks that the reader handles without any hand edit:

* **Control bytes in rows.** ``Area_5/hallway_6/Annotations/ceiling_1.txt`` line 180389
  is ``22.350 6.692 3.048 185<NUL>187 182``: a NUL byte where the space between red and
  green belongs. The non-aligned release's ``Area_5/office_19/Annotations/ceiling_1.txt``
  line 323474 holds ``103.0<0x10>0000``, and the room files
  ``Area_2/auditorium_1/auditorium_1.txt`` line 18956 and
  ``Area_3/hallway_2/hallway_2.txt`` line 20097 hold ``179.<0x10>00000`` and
  ``-6.2<0x16>2``: a byte inside a number. The public loaders put a space in place of the
  NUL (dgcnn.pytorch's and mmdetection3d's ``collect_indoor3d_data.py`` overwrite that
  byte with a space) and delete the byte inside a number. pointea does the same in memory
  with one rule for every text table
  (:func:`pointea.io.tables.repair_control_bytes`): a space if the row then holds six
  numbers, else the byte deleted; each repaired row gives one
  :class:`S3DISRepairWarning` naming the file and line. Nothing on disk changes.
* **``Area_5/office_36/Annotations/wall_3 (1).txt``**, a name outside
  ``<class>_<k>.txt``. Loaders that skip it do so as a duplicate of ``wall_3.txt``
  (superpoint_transformer's ``src/datasets/s3dis.py``); PointNet's
  ``collect_point_label`` reads it as ``wall`` (the name before the first ``_``). pointea
  decides by content: a copy-suffixed file (``<class>_<k> (<n>).txt``) identical byte for
  byte to ``<class>_<k>.txt`` is skipped (reading it would count its points twice), any
  other is read as ``<class>``; either way one warning names it.
* Files beside the rooms (``Area_N_alignmentAngle.txt``, ``.DS_Store``), a room file named
  unlike its folder (``Area_6/copyRoom_1/copy_Room_1.txt``; room files are not read) and
  ``stairs_<k>.txt`` (read as ``clutter``) need nothing.

Every split's rooms are checked when the dataset is built (:func:`check_rooms`: the
``Annotations`` folder, the file names, empty files, the first row of every file), so a
bad file fails before training starts rather than when the test area is first read.

Each room is parsed once and cached as ``<root>/processed/s3dis/Area_N/<room>.npz``
keyed by :func:`pointea.datasets._base.fingerprint` of its annotation files (name, size,
modification time, and the content of files of at most 64 KiB): a changed file is re-read.
A larger file edited to the same size with its modification time set back is not
noticed; delete ``processed/s3dis`` after such an edit. A cache that cannot be read
(truncated, not a zip archive) is rebuilt with a warning.

Splits: ``test_area`` (5 by default: the "Area-5"
protocol) is the test split; the other five areas train, minus a deterministic
validation subset of their rooms (``val_fraction``) used for model selection. Setting
``test_area`` to 1..6 in turn gives the 6-fold cross-validation protocol.
"""

from __future__ import annotations

import filecmp
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data

from ..errors import DataError, DatasetNotFoundError
from ..files import atomic_write
from ..io.files import read_text
from ..io.tables import (
    CONTROL_BYTES,
    TableRepairWarning,
    all_numbers,
    parse_float_table,
    repair_control_bytes,
)
from ..labels import S3DIS_CLASS_COLORS as CLASS_COLORS
from ..labels import S3DIS_CLASSES as CLASSES
from ._base import fingerprint, source_stats

__all__ = [
    "CLASSES",
    "CLASS_COLORS",
    "FOLDER",
    "NUM_CLASSES",
    "S3DIS",
    "S3DISRepairWarning",
    "area_rooms",
    "check_rooms",
    "check_s3dis",
    "find_s3dis",
    "parse_annotation",
    "read_room",
    "room_split",
]

FOLDER = "Stanford3dDataset_v1.2_Aligned_Version"
NUM_CLASSES = len(CLASSES)
CLASS_ALIASES = {"stairs": "clutter"}  # as PointNet's collect_point_label does
FORM_URL = "http://buildingparser.stanford.edu/dataset.html"
CACHE_VERSION = 2
_ANNOTATION = re.compile(r"^([A-Za-z]+)_(\d+)\.txt$")
# a copy made by a file manager: "wall_3 (1).txt" (Area_5/office_36 of the release)
_COPY = re.compile(r"^(([A-Za-z]+)_(\d+)) \((\d+)\)\.txt$")
_CONTROL_B = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WARNED: set[str] = set()  # quirks already reported in this process (one warning each)


class S3DISRepairWarning(TableRepairWarning):
    """A quirk of a published S3DIS file was handled in memory (file and line named)."""


def _warn_once(key: str, message: str) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, S3DISRepairWarning, stacklevel=3)


def find_s3dis(root: str | os.PathLike) -> Path:
    """The ``Stanford3dDataset_v1.2_Aligned_Version`` folder under ``root`` (or ``root``)."""
    root = Path(root).expanduser()
    for cand in (root / FOLDER, root):
        if cand.is_dir() and any(cand.glob("Area_[1-6]")):
            return cand
    raise DatasetNotFoundError(
        f"{root}: no {FOLDER}/ folder with Area_1..Area_6 found here (nor is {root} itself "
        f"that folder).\nS3DIS cannot be downloaded automatically: fill in the form at "
        f"{FORM_URL}, download Stanford3dDataset_v1.2_Aligned_Version.zip, and extract it so "
        f"that {root / FOLDER / 'Area_1'} exists. For an offline stand-in in the same layout "
        f"run pointea.datasets.synthetic.rooms.write_rooms({str(root)!r})."
    )


def parse_annotation(path: Path, what: str = "S3DIS points") -> np.ndarray:
    """Rows ``x y z r g b`` of one S3DIS text file as a ``(N, 6)`` float32 array.

    Rows holding ASCII control characters are repaired (see the module docstring) with
    a :class:`S3DISRepairWarning`; any other malformed row raises :class:`DataError`
    naming the file and line.
    """
    text = repair_control_bytes(read_text(path, what), path, 6, S3DISRepairWarning)
    table = parse_float_table(text, path, 6, None, what)
    rgb = table[:, 3:6]
    if bool(((rgb < 0) | (rgb > 255)).any()):
        row = int(np.nonzero(((rgb < 0) | (rgb > 255)).any(axis=1))[0][0])
        raise DataError(
            f"{path}: line {row + 1}: colour {rgb[row].tolist()} outside 0..255 (columns r g b)"
        )
    return table


def _annotation_class(f: Path) -> tuple[int | None, str | None]:
    """``(class index, note)`` of an annotation file: the index is ``None`` for a copy
    that duplicates its original (skipped); the note says what was done with a file
    named outside ``<class>_<k>.txt``. Raises for a name that names no class."""
    m = _ANNOTATION.match(f.name)
    if m is None and (c := _COPY.match(f.name)) is not None:
        original = f.with_name(f"{c.group(1)}.txt")
        if original.is_file() and filecmp.cmp(original, f, shallow=False):
            return None, (
                f"{f}: a copy of {original.name} (the same bytes); skipped, so that its "
                f"points are not counted twice"
            )
        name = CLASS_ALIASES.get(c.group(2), c.group(2))
        if name in CLASSES:
            return CLASSES.index(name), (
                f"{f}: file name is not <class>_<k>.txt; read as {name} (the name before "
                f"the first '_', as PointNet's collect_point_label does)"
            )
    name = CLASS_ALIASES.get(m.group(1), m.group(1)) if m else None
    if name not in CLASSES:
        raise DataError(
            f"{f}: file name is not <class>_<k>.txt with a known class; "
            f"classes are {', '.join(CLASSES)} (and stairs, read as clutter)"
        )
    return CLASSES.index(name), None


def _room_notes(room_dir: Path) -> list[str]:
    """What :func:`_annotation_files` does with oddly named files of a room."""
    ann = room_dir / "Annotations"
    return [
        note
        for f in sorted(ann.glob("* (*).txt"))
        if f.is_file() and (note := _annotation_class(f)[1]) is not None
    ]


def _annotation_files(room_dir: Path) -> list[tuple[Path, int]]:
    """``(file, class index)`` of a room's annotation files, sorted by name."""
    ann = room_dir / "Annotations"
    if not ann.is_dir():
        raise DataError(f"{room_dir}: no Annotations/ folder (expected <class>_<k>.txt files)")
    out = []
    for f in sorted(ann.iterdir()):
        if f.suffix != ".txt" or not f.is_file():
            continue
        cls, note = _annotation_class(f)
        if note is not None:
            _warn_once(str(f), note)
        if cls is not None:
            out.append((f, cls))
    if not out:
        raise DataError(f"{ann}: the room has no annotation files (empty room)")
    return out


def check_rooms(rooms: Sequence[Path]) -> dict[str, int]:
    """Check the files of ``rooms`` cheaply, without parsing them: each room has an
    ``Annotations`` folder of ``<class>_<k>.txt`` files, none empty, each starting with a
    row of six numbers. Raises :class:`DataError` naming the first bad file; returns
    ``{"rooms": ..., "files": ..., "bytes": ...}``."""
    files = nbytes = 0
    for room in rooms:
        for f, _ in _annotation_files(room):
            size = f.stat().st_size
            if size == 0:
                raise DataError(f"{f}: the S3DIS points file is empty")
            with open(f, "rb") as fh:
                head = fh.read(256).split(b"\n", 1)[0]
            text = head.decode("latin-1")
            row = text.split()
            if not CONTROL_BYTES.search(text) and (len(row) != 6 or not all_numbers(row)):
                raise DataError(f"{f}: line 1 is {head[:80]!r}, expected six numbers 'x y z r g b'")
            files += 1
            nbytes += size
    return {"rooms": len(rooms), "files": files, "bytes": nbytes}


def read_room(room_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """Parse one room's annotation files (no cache).

    Returns:
        ``{"xyz": (N, 3) float32, "rgb": (N, 3) uint8, "label": (N,) int64,
        "instance": (N,) int64}`` where ``instance`` numbers the annotation files.
    """
    room_dir = Path(room_dir)
    parts, labels, inst = [], [], []
    for k, (f, cls) in enumerate(_annotation_files(room_dir)):
        table = parse_annotation(f)
        parts.append(table)
        labels.append(np.full(len(table), cls, dtype=np.int64))
        inst.append(np.full(len(table), k, dtype=np.int64))
    table = np.concatenate(parts)
    return {
        "xyz": np.ascontiguousarray(table[:, :3]),
        "rgb": np.round(table[:, 3:6]).astype(np.uint8),
        "label": np.concatenate(labels),
        "instance": np.concatenate(inst),
    }


def _room_key(room_dir: Path) -> str:
    files = [f for f, _ in _annotation_files(room_dir)]
    return fingerprint([CACHE_VERSION, source_stats(files, room_dir)])


def load_room(room_dir: Path, cache_dir: Path | None) -> dict[str, np.ndarray]:
    """:func:`read_room` through an ``.npz`` cache keyed by its sources' fingerprint."""
    if cache_dir is None:
        return read_room(room_dir)
    key = _room_key(room_dir)
    cache = cache_dir / room_dir.parent.name / f"{room_dir.name}.npz"
    if cache.is_file():
        try:
            with np.load(cache) as z:
                if str(z["fingerprint"]) == key:
                    return {k: z[k] for k in ("xyz", "rgb", "label", "instance")}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            warnings.warn(
                f"{cache}: unreadable cache ({type(exc).__name__}); rebuilding it from {room_dir}",
                S3DISRepairWarning,
                stacklevel=2,
            )
    room = read_room(room_dir)
    atomic_write(cache, lambda f: np.savez(f, fingerprint=np.array(key), **room))
    return room


def area_rooms(folder: Path, area: int) -> list[Path]:
    """The room folders of ``Area_<area>`` sorted by name."""
    adir = folder / f"Area_{area}"
    if not adir.is_dir():
        raise DataError(f"{adir}: missing (S3DIS has Area_1 .. Area_6)")
    rooms = sorted(p for p in adir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not rooms:
        raise DataError(f"{adir}: holds no room folders")
    return rooms


def room_split(
    folder: Path, split: str, test_area: int = 5, val_fraction: float = 0.1
) -> list[Path]:
    """Room folders of a split: ``train``, ``val``, ``trainval`` or ``test``.

    ``test`` is every room of ``test_area``. ``val`` is every ``round(1 / val_fraction)``-th
    room (sorted by ``Area_N/name``) of the other areas, ``train`` the rest of them, so
    selection never sees the test area. ``val_fraction=0`` leaves ``val`` empty.
    """
    if test_area not in range(1, 7):
        raise DataError(f"test_area: expected 1..6, got {test_area}")
    if split == "test":
        return area_rooms(folder, test_area)
    if split not in ("train", "val", "trainval"):
        raise DataError(f"split: expected train, val, trainval or test, got {split!r}")
    rooms = [r for a in range(1, 7) if a != test_area for r in area_rooms(folder, a)]
    if split == "trainval":
        return rooms
    if not 0 <= val_fraction < 1:
        raise DataError(f"val_fraction: expected [0, 1), got {val_fraction}")
    step = round(1 / val_fraction) if val_fraction > 0 else 0
    is_val = [step > 0 and i % step == step // 2 for i in range(len(rooms))]
    return [r for r, v in zip(rooms, is_val, strict=True) if v == (split == "val")]


class S3DIS(torch.utils.data.Dataset):
    """Whole S3DIS rooms as PyG ``Data`` objects, one per room.

    Each item has ``pos`` ``(N, 3)`` float32 (metres, as published), ``rgb`` ``(N, 3)``
    uint8, ``y`` ``(N,)`` int64 class ids (:data:`CLASSES`), ``instance`` ``(N,)`` and
    ``room`` (``"Area_5/office_1"``). Rooms are loaded lazily through the ``.npz`` cache.

    Args:
        root: folder holding ``Stanford3dDataset_v1.2_Aligned_Version/`` (or that folder).
        split: ``"train" | "val" | "trainval" | "test"`` (see :func:`room_split`).
        test_area: the held-out area (5: the Area-5 protocol; 1..6: 6-fold CV).
        val_fraction: share of training-area rooms carved out for validation.
        transform: applied to each ``Data`` on access.
        cache: keep parsed rooms as ``.npz`` under ``<root>/processed/s3dis``.
        validate: check the split's files at once (:func:`check_rooms`; a bad file then
            fails here, not when its room is first read).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        test_area: int = 5,
        val_fraction: float = 0.1,
        transform: Callable[[Data], Data] | None = None,
        cache: bool = True,
        validate: bool = True,
    ) -> None:
        self.folder = find_s3dis(root)
        self.split = split
        self.test_area = test_area
        self.rooms: list[Path] = room_split(self.folder, split, test_area, val_fraction)
        if validate:
            check_rooms(self.rooms)
        self.transform = transform
        self.cache_dir = self.folder.parent / "processed" / "s3dis" if cache else None

    def __len__(self) -> int:
        return len(self.rooms)

    def room_name(self, i: int) -> str:
        return f"{self.rooms[i].parent.name}/{self.rooms[i].name}"

    def raw(self, i: int) -> dict[str, np.ndarray]:
        """The cached arrays of room ``i`` (``xyz``, ``rgb``, ``label``, ``instance``)."""
        return load_room(self.rooms[i], self.cache_dir)

    def __getitem__(self, i: int) -> Data:
        r = self.raw(i)
        data = Data(
            pos=torch.from_numpy(r["xyz"]),
            rgb=torch.from_numpy(r["rgb"]),
            y=torch.from_numpy(r["label"]),
            instance=torch.from_numpy(r["instance"]),
            room=self.room_name(i),
        )
        return self.transform(data) if self.transform is not None else data

    def class_counts(self) -> np.ndarray:
        """Points per class over the split's rooms ``(NUM_CLASSES,)``."""
        counts = np.zeros(NUM_CLASSES, dtype=np.int64)
        for i in range(len(self)):
            counts += np.bincount(self.raw(i)["label"], minlength=NUM_CLASSES)
        return counts

    def __repr__(self) -> str:
        return f"S3DIS(split={self.split!r}, test_area={self.test_area}, rooms={len(self)})"


def rooms_summary(names: Sequence[str]) -> dict[str, Any]:
    """Rooms per area of a list of ``Area_N/room`` names (for logs and run reports)."""
    out: dict[str, int] = {}
    for n in names:
        out[n.split("/")[0]] = out.get(n.split("/")[0], 0) + 1
    return out


def check_s3dis(root: str | os.PathLike, count_points: bool = True) -> dict[str, Any]:
    """What is in an S3DIS folder, for ``pointea-data check``.

    Lists every area's rooms, checks their files (:func:`check_rooms`) and, with
    ``count_points``, counts the points per area by counting the rows of the annotation
    files (no parsing). The quirks met (copied annotation files, rows with control bytes,
    files beside the rooms) are listed; the control-byte rows are found by a byte scan.

    Returns:
        ``{"folder", "areas": {"Area_N": {"rooms", "files", "bytes", "points"}},
        "quirks": [str, ...]}``; raises :class:`DataError` on a bad file.
    """
    folder = find_s3dis(root)
    areas: dict[str, dict[str, int]] = {}
    quirks: list[str] = []
    for a in range(1, 7):
        rooms = area_rooms(folder, a)
        adir = folder / f"Area_{a}"
        extra = sorted(p.name for p in adir.iterdir() if not p.is_dir())
        if extra:
            quirks.append(f"Area_{a}: files beside the rooms, not read: {', '.join(extra)}")
        info = check_rooms(rooms)
        quirks += [note for room in rooms for note in _room_notes(room)]
        points = 0
        if count_points:
            for room in rooms:
                for f, _ in _annotation_files(room):
                    points += _count_rows(f, quirks)
        areas[f"Area_{a}"] = {**info, "points": points}
    return {"folder": str(folder), "areas": areas, "quirks": quirks}


def _count_rows(path: Path, quirks: list[str]) -> int:
    """Rows of a text file (lines, a last line without a newline included), read in
    blocks; lines holding control bytes go into ``quirks`` with their numbers."""
    rows, last = 0, b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            for m in _CONTROL_B.finditer(chunk):
                line = rows + chunk.count(b"\n", 0, m.start()) + 1
                quirks.append(f"{path}: line {line} holds the control byte {m.group()!r}")
            rows += chunk.count(b"\n")
            last = chunk[-1:]
    return rows + (last != b"\n")


def s3dis_report(root: str | os.PathLike) -> tuple[list[str], int] | None:
    """``pointea-data check``'s lines for the S3DIS folder under ``root`` and the exit
    status (0 ok, 1 a bad file); ``None`` when ``root`` holds no S3DIS folder."""
    try:
        folder = find_s3dis(root)
    except DatasetNotFoundError:
        return None
    lines = [f"{folder} [s3dis]"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", S3DISRepairWarning)
            info = check_s3dis(folder)
    except DataError as exc:
        return [*lines, f"  error: {exc}"], 1
    for name, a in info["areas"].items():
        lines.append(
            f"  {name}  {a['rooms']:>3} rooms, {a['files']:>5} annotation files, "
            f"{a['points']:>11,} points, {a['bytes'] / 2**30:.2f} GiB"
        )
    total = sum(a["points"] for a in info["areas"].values())
    lines.append(f"  all     {total:,} points")
    lines += [f"  quirk: {q}" for q in info["quirks"]]
    return [*lines, "  ok"], 0
