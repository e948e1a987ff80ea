"""Dataset readers (published archives, read exactly), downloads and offline stand-ins.

* :class:`ModelNet40` -- ``modelnet40_ply_hdf5_2048`` (HDF5) or
  ``modelnet40_normal_resampled`` (text); splits train / val (carved, seeded) / test /
  trainval.
* :class:`ShapeNetPart` -- ``shapenetcore_partanno_segmentation_benchmark_v0_normal``
  (text) or ``shapenet_part_seg_hdf5_data`` (HDF5); the category / part table
  (:data:`SHAPENET_CATEGORIES`, :data:`CATEGORY_PARTS`, :data:`PART_NAMES`) lives here.
* :mod:`~pointea.datasets.synthetic` -- procedural sets in the same formats
  (:func:`ensure_synthetic`): a package of primitives, shapes, writers, cache, baseline;
  :func:`write_rooms` writes procedural rooms in the S3DIS layout.
* :class:`ScanObjectNN` -- the release's ``h5_files`` (real scans, 15 classes; variants
  PB_T50_RS, OBJ_BG, OBJ_ONLY); :func:`write_scanobjectnn` writes a stand-in in its layout.
* :class:`S3DIS` -- ``Stanford3dDataset_v1.2_Aligned_Version`` whole rooms (13 classes,
  Area-5 / 6-fold splits).
* :mod:`~pointea.datasets.download` -- the archive table and atomic, verified downloads;
  :mod:`~pointea.datasets.extract` -- safe extraction (entry and link checks).
"""

from .download import ARCHIVES, download_archive
from .modelnet40 import ModelNet40, carve_validation
from .s3dis import S3DIS
from .scanobjectnn import ScanObjectNN
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
from .synthetic.rooms import write_rooms
from .synthetic.scanobjectnn import write_scanobjectnn

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
    "ScanObjectNN",
    "write_rooms",
    "write_scanobjectnn",
    "ARCHIVES",
    "download_archive",
]
