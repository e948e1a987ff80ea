"""Operations on packed point clouds (PyTorch Geometric batching), one module per concept.

* :mod:`.layout` - :class:`CloudLayout`, :func:`check_cloud` (validation) and
  :func:`input_checks` (turning the value checks off);
* :mod:`.sampling` - farthest point sampling and kNN grouping, on torch_cluster's kernels
  or pointea's pure-torch ones (:func:`sampling_backend`, :func:`sampling_kernel`);
* :mod:`.segment` - per-segment and per-cloud max, mean, log-sum-exp and softmax.

A batch of ``B`` clouds is packed along the first axis: ``pos`` is ``(total_points, 3)``,
features ``x`` are ``(total_points, C)`` and ``batch`` (``(total_points,)``, sorted, values
``0..B-1``) says which cloud each point belongs to; ``batch=None`` means a single cloud.
"""

from __future__ import annotations

from .layout import (
    CloudLayout,
    check_cloud,
    host_uniform,
    input_checks,
    input_checks_enabled,
    layout_of,
)
from .sampling import (
    CLUSTER_CUDA_FPS_MAX_DIST2,
    CLUSTER_CUDA_MAX_K,
    cuda_fps_coordinates,
    farthest_point_sample,
    knn_groups,
    sampling_backend,
    sampling_kernel,
)
from .segment import (
    max_mean_pool,
    segment_logsumexp,
    segment_max,
    segment_mean,
    segment_softmax,
)

__all__ = [
    "CLUSTER_CUDA_FPS_MAX_DIST2",
    "CLUSTER_CUDA_MAX_K",
    "CloudLayout",
    "check_cloud",
    "cuda_fps_coordinates",
    "farthest_point_sample",
    "host_uniform",
    "input_checks",
    "input_checks_enabled",
    "knn_groups",
    "layout_of",
    "max_mean_pool",
    "sampling_backend",
    "sampling_kernel",
    "segment_logsumexp",
    "segment_max",
    "segment_mean",
    "segment_softmax",
]
