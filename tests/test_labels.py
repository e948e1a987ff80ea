"""The label tables: defined once in pointea.labels, the same objects in the readers."""

import numpy as np
import pytest

from pointea import labels
from pointea.datasets import s3dis, shapenetpart
from pointea.errors import InputError


def test_the_readers_name_the_same_tables():
    for name in (
        "SHAPENET_CATEGORIES",
        "CATEGORY_PARTS",
        "PART_NAMES",
        "NUM_PARTS",
        "PART_TO_CATEGORY",
        "category_index",
        "part_label",
    ):
        assert getattr(shapenetpart, name) is getattr(labels, name), name
    assert s3dis.CLASSES is labels.S3DIS_CLASSES
    assert s3dis.CLASS_COLORS is labels.S3DIS_CLASS_COLORS


def test_tables_agree():
    assert len(labels.SHAPENET_CATEGORIES) == 16 and labels.NUM_PARTS == 50
    assert [p for parts in labels.CATEGORY_PARTS for p in parts] == list(range(50))
    assert len(labels.S3DIS_CLASSES) == len(labels.S3DIS_CLASS_COLORS) == 13
    assert np.all((labels.S3DIS_CLASS_COLORS >= 0) & (labels.S3DIS_CLASS_COLORS <= 1))
    assert labels.category_index("chair") == labels.category_index("03001627") == 4
    assert labels.part_label(1) == "Airplane/wing"
    with pytest.raises(InputError, match="unknown ShapeNetPart category"):
        labels.category_index("spaceship")
