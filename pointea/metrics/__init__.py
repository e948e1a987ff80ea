"""Evaluation metrics of the three tasks, all computed from confusion matrices or
per-shape IoUs with tensors only (a distributed run sums the meters' states):

* :mod:`.classification`: OA, mAcc, per-class accuracy; :func:`confusion_matrix`;
* :mod:`.parts`: part segmentation (category-restricted predictions, shape IoU, instance
  and class mIoU);
* :mod:`.scenes`: scene segmentation (OA, mAcc, mIoU over every point of a split) and
  :func:`pool_runs`, the 6-fold S3DIS numbers from six runs.
"""

from .classification import ClassificationMeter, classification_metrics, confusion_matrix
from .parts import (
    SegmentationMeter,
    category_part_mask,
    predict_parts,
    restrict_to_category,
    segmentation_metrics,
    shape_ious,
)
from .scenes import (
    SemSegMeter,
    majority_baseline,
    pool_confusions,
    pool_runs,
    semseg_metrics,
    semseg_metrics_from_confusion,
)

__all__ = [
    "ClassificationMeter",
    "SegmentationMeter",
    "SemSegMeter",
    "category_part_mask",
    "classification_metrics",
    "confusion_matrix",
    "majority_baseline",
    "pool_confusions",
    "pool_runs",
    "predict_parts",
    "restrict_to_category",
    "segmentation_metrics",
    "semseg_metrics",
    "semseg_metrics_from_confusion",
    "shape_ious",
]
