"""Scene segmentation metrics: moved to :mod:`pointea.metrics.scenes` (import them from
:mod:`pointea.metrics`); this module re-exports them for the call sites not yet moved."""

from .metrics.scenes import (  # noqa: F401
    SemSegMeter,
    majority_baseline,
    semseg_metrics,
    semseg_metrics_from_confusion,
)
