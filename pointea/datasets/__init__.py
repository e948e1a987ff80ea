"""Dataset readers (published archives, read exactly), downloads and offline stand-ins.

* :class:`ModelNet40` -- ``modelnet40_ply_hdf5_2048`` (HDF5) or
  ``modelnet40_normal_resampled`` (text); splits train / val (carved, seeded) / test /
  trainval.
* :class:`ShapeNetPart` -- ``shapenetcore_partanno_segmentation_benchmark_v0_normal``
  (text) or ``shapenet_part_seg_hdf5_data`` (HDF5); the category / part table
  (:data:`SHAPENET_CATEGORIES`, :data:`CATEGORY_PARTS`, :data:`PART_NAMES`) lives here.
* :mod:`~pointea.datasets.synthetic` -- procedural sets in the same formats
  (:func:`ensure_synthetic`).
* :class:`S3DIS` -- ``Stanford3dDataset_v1.2_Aligned_Version`` whole rooms (13 classes,
  Area-5 / 6-fold splits); :func:`write_rooms` writes procedural rooms in that layout.
* :mod:`~pointea.datasets.download` -- safe, atomic archive download and extraction.
"""

from .download import ARCHIVES, download_archive
from .modelnet40 import ModelNet40, carve_validation
from .s3dis import S3DIS
from .shapenetpart import (
    CATEGORY_PARTS,
    NUM_PARTS,
    PART_NAMES,
    PART_TO_CATEGORY,
    SHAPENET_CATEGORIES,
    ShapeNetPart,
    part_label,
)
from .synthetic import ensure_synthetic, trivial_baseline_accuracy
from .synthetic_rooms import write_rooms

__all__ = [
    "ModelNet40",
    "ShapeNetPart",
    "SHAPENET_CATEGORIES",
    "CATEGORY_PARTS",
    "PART_NAMES",
    "PART_TO_CATEGORY",
    "NUM_PARTS",
    "part_label",
    "carve_validation",
    "ensure_synthetic",
    "trivial_baseline_accuracy",
    "S3DIS",
    "write_rooms",
    "ARCHIVES",
    "download_archive",
]
