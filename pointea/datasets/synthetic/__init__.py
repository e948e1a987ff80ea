"""Procedural offline stand-ins written in exactly the published on-disk formats.

No download is needed to run the readers, trainers and notebooks:

* :mod:`.primitives` -- surface primitives (ellipsoids, boxes, cylinders, frusta, tori,
  sheets) with area-proportional point sampling and exact normals;
* :mod:`.shapes` -- the objects built from them (:data:`CLASSIFICATION_CLASSES`,
  :data:`SEGMENTATION_CATEGORIES`) and :func:`sample_shape`, which varies each instance in
  proportions, anisotropic scale, rotation about the up axis (y), noise and cut-out
  regions, and normalises it into the unit sphere like ModelNet40;
* :mod:`.writers` -- :func:`write_classification` (``modelnet40_ply_hdf5_2048/``, read by
  :class:`~pointea.datasets.ModelNet40`) and :func:`write_part_segmentation`
  (``shapenetcore_partanno_segmentation_benchmark_v0_normal/`` with the real ShapeNetPart
  names, synsets and part ids, read by :class:`~pointea.datasets.ShapeNetPart`);
* :mod:`.cache` -- :func:`ensure_synthetic`, which generates a set once and reuses it;
* :mod:`.baseline` -- :func:`trivial_baseline_accuracy`: classes are not separable by a
  trivial statistic, and this measures how far one gets.

Everything is a deterministic function of ``seed``.
"""

from .baseline import trivial_baseline_accuracy
from .cache import ensure_synthetic, resolve_task, synthetic_defaults, synthetic_folder
from .primitives import Part
from .shapes import CLASSIFICATION_CLASSES, SEGMENTATION_CATEGORIES, sample_shape
from .writers import (
    CLS_FOLDER,
    GENERATOR_VERSION,
    MARKER,
    SEG_FOLDER,
    read_marker,
    write_classification,
    write_part_segmentation,
)

__all__ = [
    "CLASSIFICATION_CLASSES",
    "SEGMENTATION_CATEGORIES",
    "write_classification",
    "write_part_segmentation",
    "ensure_synthetic",
    "trivial_baseline_accuracy",
    "sample_shape",
    "read_marker",
    "synthetic_defaults",
    "resolve_task",
    "synthetic_folder",
    "Part",
    "GENERATOR_VERSION",
    "MARKER",
    "CLS_FOLDER",
    "SEG_FOLDER",
]
