"""Operations on packed point clouds (PyTorch Geometric batching)."""

from __future__ import annotations

from .sampling import (
    CLUSTER_CUDA_FPS_MAX_DIST2,
    CLUSTER_CUDA_MAX_K,
    CloudLayout,
    check_cloud,
    cuda_fps_coordinates,
    farthest_point_sample,
    input_checks,
    input_checks_enabled,
    knn_groups,
    layout_of,
    max_mean_pool,
    sampling_backend,
    sampling_kernel,
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
