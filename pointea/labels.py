"""Label tables of the published datasets, shared by the readers and the renders.

ShapeNetPart (Yi et al., SIGGRAPH Asia 2016): :data:`SHAPENET_CATEGORIES` (name ->
synset id, canonical order), :data:`CATEGORY_PARTS` (global part ids per category index),
:data:`PART_NAMES` (50 short names), :func:`category_index` and :func:`part_label`.

S3DIS (Armeni et al., CVPR 2016): the 13 classes :data:`S3DIS_CLASSES` in the order of
their label ids and the legend colours :data:`S3DIS_CLASS_COLORS`.

Plain tables (numpy only): :mod:`pointea.datasets` and :mod:`pointea.visualization`
both import them from here.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

__all__ = [
    "CATEGORY_PARTS",
    "NUM_PARTS",
    "PART_NAMES",
    "PART_TO_CATEGORY",
    "S3DIS_CLASSES",
    "S3DIS_CLASS_COLORS",
    "SHAPENET_CATEGORIES",
    "category_index",
    "part_label",
]

# --- ShapeNetPart -------------------------------------------------------------------------

#: The 16 categories in canonical order (their index is the ``category`` label), with
#: their ShapeNetCore synset ids.
SHAPENET_CATEGORIES: dict[str, str] = {
    "Airplane": "02691156",
    "Bag": "02773838",
    "Cap": "02954340",
    "Car": "02958343",
    "Chair": "03001627",
    "Earphone": "03261776",
    "Guitar": "03467517",
    "Knife": "03624134",
    "Lamp": "03636649",
    "Laptop": "03642806",
    "Motorbike": "03790512",
    "Mug": "03797390",
    "Pistol": "03948459",
    "Rocket": "04099429",
    "Skateboard": "04225987",
    "Table": "04379243",
}

_PARTS_PER_CATEGORY = (4, 2, 2, 4, 4, 3, 3, 2, 4, 2, 6, 2, 3, 3, 3, 3)


def _build_parts() -> list[list[int]]:
    out, start = [], 0
    for n in _PARTS_PER_CATEGORY:
        out.append(list(range(start, start + n)))
        start += n
    return out


#: Global part ids of each category (index = category index): Airplane 0-3 ... Table 47-49.
CATEGORY_PARTS: list[list[int]] = _build_parts()

#: Number of global part labels (50).
NUM_PARTS: int = sum(_PARTS_PER_CATEGORY)

#: Short human names of the 50 global parts, for legends. The per-category order follows
#: the common reading of the ShapeNetPart annotation labels (not confirmed against the
#: original label files; the ids themselves are exact).
PART_NAMES: list[str] = [
    "body",
    "wing",
    "tail",
    "engine",  # Airplane 0-3
    "handle",
    "body",  # Bag 4-5
    "panel",
    "peak",  # Cap 6-7
    "roof",
    "hood",
    "wheel",
    "body",  # Car 8-11
    "back",
    "seat",
    "leg",
    "arm",  # Chair 12-15
    "earcup",
    "headband",
    "cord",  # Earphone 16-18
    "head",
    "neck",
    "body",  # Guitar 19-21
    "blade",
    "handle",  # Knife 22-23
    "base",
    "shade",
    "canopy",
    "tube",  # Lamp 24-27
    "keyboard",
    "screen",  # Laptop 28-29
    "gas tank",
    "seat",
    "wheel",
    "handlebar",
    "light",
    "frame",  # Motorbike 30-35
    "handle",
    "cup",  # Mug 36-37
    "barrel",
    "handle",
    "trigger",  # Pistol 38-40
    "body",
    "fin",
    "nose",  # Rocket 41-43
    "wheel",
    "deck",
    "strap",  # Skateboard 44-46
    "top",
    "leg",
    "support",  # Table 47-49
]

#: Category index of each global part id (length 50).
PART_TO_CATEGORY: list[int] = [c for c, parts in enumerate(CATEGORY_PARTS) for _ in parts]

assert len(PART_NAMES) == NUM_PARTS == 50 and len(SHAPENET_CATEGORIES) == 16

_CATEGORY_NAMES = list(SHAPENET_CATEGORIES)
_SYNSET_TO_INDEX = {s: i for i, s in enumerate(SHAPENET_CATEGORIES.values())}


def part_label(part_id: int) -> str:
    """``"Airplane/wing"`` for global part id 1."""
    if not 0 <= part_id < NUM_PARTS:
        raise InputError(f"part_id must be in 0..{NUM_PARTS - 1}, got {part_id}")
    return f"{_CATEGORY_NAMES[PART_TO_CATEGORY[part_id]]}/{PART_NAMES[part_id]}"


def category_index(value: int | str) -> int:
    """Canonical index 0..15 of a ShapeNetPart category.

    Accepts the index itself (an int or a string of digits), a category name
    (case-insensitive, e.g. ``"chair"``) or a synset id (``"03001627"``).
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if not 0 <= int(value) < len(_CATEGORY_NAMES):
            raise InputError(
                f"ShapeNetPart category index must be in 0..{len(_CATEGORY_NAMES) - 1}, got {value}"
            )
        return int(value)
    key = str(value).strip()
    if key in _SYNSET_TO_INDEX:
        return _SYNSET_TO_INDEX[key]
    if key.isdigit():
        return category_index(int(key))
    for i, n in enumerate(_CATEGORY_NAMES):
        if n.lower() == key.lower():
            return i
    raise InputError(
        f"unknown ShapeNetPart category {value!r}; one of: {', '.join(_CATEGORY_NAMES)}"
    )


# --- S3DIS --------------------------------------------------------------------------------

#: The 13 classes of S3DIS in the order of their label ids.
S3DIS_CLASSES: tuple[str, ...] = (
    "ceiling",
    "floor",
    "wall",
    "beam",
    "column",
    "window",
    "door",
    "table",
    "chair",
    "sofa",
    "bookcase",
    "board",
    "clutter",
)

#: The colours of the class legend in PointNet's S3DIS visualisations (RGB in [0, 1]).
S3DIS_CLASS_COLORS: np.ndarray = (
    np.array(
        [
            [0, 255, 0],
            [0, 0, 255],
            [0, 255, 255],
            [255, 255, 0],
            [255, 0, 255],
            [100, 100, 255],
            [200, 200, 100],
            [170, 120, 200],
            [255, 0, 0],
            [200, 100, 100],
            [10, 200, 100],
            [200, 200, 200],
            [50, 50, 50],
        ],
        dtype=np.float64,
    )
    / 255.0
)
