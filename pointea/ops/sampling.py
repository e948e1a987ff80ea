"""Farthest point sampling and k-nearest-neighbour grouping of packed clouds.

Sampling and grouping call ``torch_cluster`` directly: PyG 2.8's own ``fps`` / ``knn``
require ``pyg-lib``, which cannot be installed everywhere. Where torch_cluster has no
kernels for the input's device (a CPU-only build next to a CUDA torch), the pure-torch
kernels of :mod:`pointea.pure_sampling` run instead (:func:`sampling_kernel`,
:func:`sampling_backend`, ``POINTEA_SAMPLING=torch``). On CUDA, torch_cluster's FPS gets
coordinates it can handle (:func:`cuda_fps_coordinates`) and kNN with ``k > 100`` (its
CUDA limit) runs in pure torch.

Host reads: FPS and kNN on equal-size clouds read nothing themselves (their torch_cluster
kernels do).

Centre counts: :func:`farthest_point_sample` gives every cloud ``min(num_samples, n_i)``
centres, so a cloud with fewer points than ``num_samples`` keeps all of its points as
centres (in FPS order); nothing is duplicated or invented. :func:`knn_groups` likewise
gives a centre ``min(k, n_i)`` neighbours.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import Tensor

from .. import pure_sampling
from ..errors import InputError
from .layout import CloudLayout

__all__ = [
    "CLUSTER_CUDA_FPS_MAX_DIST2",
    "CLUSTER_CUDA_MAX_K",
    "cuda_fps_coordinates",
    "farthest_point_sample",
    "knn_groups",
    "sampling_backend",
    "sampling_kernel",
]

# torch_cluster's kernels where it has them for the input's device, else the pure-torch
# ones of :mod:`pointea.pure_sampling` (same results on CPU, see there for ties).
_BACKENDS = ("auto", "torch", "cluster")
_BACKEND: ContextVar[str] = ContextVar(
    "pointea_sampling_backend", default=os.environ.get("POINTEA_SAMPLING", "auto") or "auto"
)
# torch_cluster's CUDA kNN keeps at most this many neighbours (a device-side assert)
CLUSTER_CUDA_MAX_K = 100
# torch_cluster's CUDA FPS starts every distance at this value (squared units)
CLUSTER_CUDA_FPS_MAX_DIST2 = 5e4


@contextmanager
def sampling_backend(name: str) -> Iterator[None]:
    """Choose the FPS/kNN kernels inside a ``with`` block.

    ``"auto"`` (default): torch_cluster where it has kernels for the input's device, else
    pure torch; ``"torch"``: always pure torch; ``"cluster"``: always torch_cluster. The
    environment variable ``POINTEA_SAMPLING`` sets the default.
    """
    if name not in _BACKENDS:
        raise ValueError(f"sampling backend: expected one of {_BACKENDS}, got {name!r}")
    token = _BACKEND.set(name)
    try:
        yield
    finally:
        _BACKEND.reset(token)


def _cluster():
    try:
        import torch_cluster
    except ImportError as exc:  # pragma: no cover - setup.sh installs it
        raise ImportError(
            "pointea needs torch-cluster for sampling and grouping: "
            "pip install --no-build-isolation torch-cluster"
        ) from exc
    return torch_cluster


def _cluster_has_kernels(device: torch.device) -> bool:
    """Whether torch_cluster has kernels for ``device``; ImportError when it is absent."""
    if device.type not in ("cpu", "cuda"):
        return False
    _cluster()  # loads the library (ImportError when absent), registers torch.ops.torch_cluster
    if device.type == "cpu":
        return True
    return int(torch.ops.torch_cluster.cuda_version()) != -1


def sampling_kernel(device: torch.device) -> str:
    """``"cluster"`` or ``"torch"``: the FPS/kNN implementation used for ``device``."""
    name = _BACKEND.get()
    if name not in _BACKENDS:
        raise ValueError(f"POINTEA_SAMPLING: expected one of {_BACKENDS}, got {name!r}")
    if name != "auto":
        return name
    try:
        has = _cluster_has_kernels(torch.device(device))
    except ImportError:
        warnings.warn("torch-cluster is not installed: using pure-torch FPS/kNN", stacklevel=3)
        return "torch"
    return "cluster" if has else "torch"


def cuda_fps_coordinates(pos: Tensor, layout: CloudLayout) -> Tensor:
    """``pos`` moved and scaled so torch_cluster's CUDA FPS sees every distance.

    That kernel starts each point's distance at ``5e4`` (squared units), so a cloud wider
    than about 223 units would look like all points tie. Each cloud is moved to start at
    its first point and, when its farthest point from there lies beyond 100 units, scaled
    down (one factor per cloud, which keeps its FPS order).
    """
    starts = torch.cumsum(layout.sizes, 0) - layout.sizes  # (B,)
    rel = pos - pos[starts][layout.batch]
    reach = rel.norm(dim=1)
    radius = rel.new_zeros(layout.num_clouds).scatter_reduce(
        0, layout.batch, reach, reduce="amax", include_self=True
    )
    scale = (radius / 100.0).clamp(min=1.0)
    return rel / scale[layout.batch].unsqueeze(1)


def farthest_point_sample(
    pos: Tensor, layout: CloudLayout, num_samples: int, random_start: bool = False
) -> tuple[Tensor, CloudLayout]:
    """Farthest point sampling of ``min(num_samples, n_i)`` centres in every cloud.

    Args:
        pos: ``(total_points, 3)`` coordinates.
        layout: the batch layout of ``pos``.
        num_samples: centres per cloud (fewer for a cloud with fewer points).
        random_start: start each cloud at a random point instead of its first point
            (the first point matches the public PCT implementation).

    Returns:
        ``(index, layout)``: indices into ``pos`` of the centres, grouped by cloud and in
        FPS order, and the layout of the centres.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise InputError(f"num_samples: must be an integer >= 1, got {num_samples!r}")
    sizes = layout.sizes
    clouds = torch.arange(layout.num_clouds, device=pos.device)
    if layout.uniform is not None:  # sizes known on the host: no synchronisation
        per_cloud = min(layout.uniform, num_samples)
        counts = torch.full_like(sizes, per_cloud)
        new_batch = clouds.repeat_interleave(per_cloud)
        uniform: int | None = per_cloud
    else:
        counts = sizes.clamp(max=num_samples)
        total, smallest, largest = torch.stack([counts.sum(), counts.min(), counts.max()]).tolist()
        new_batch = clouds.repeat_interleave(counts, output_size=total)
        uniform = smallest if smallest == largest else None
    new_layout = CloudLayout(new_batch, layout.num_clouds, uniform, counts)
    coords = pos.detach().float()
    if sampling_kernel(pos.device) == "torch":
        index = pure_sampling.fps(coords, sizes, num_samples, random_start, layout.uniform)
    else:
        if pos.device.type == "cuda":
            coords = cuda_fps_coordinates(coords, layout)
        # torch_cluster keeps ceil(n_i * ratio_i) points; (count - 0.5) / n_i makes that
        # exactly `count` regardless of float rounding.
        ratio = (counts.to(torch.float32) - 0.5) / sizes.to(torch.float32)
        index = _cluster().fps(coords, layout.batch, ratio, random_start, layout.num_clouds)
    if index.numel() != new_batch.numel():  # pragma: no cover - guards a torch_cluster change
        raise RuntimeError("farthest point sampling returned an unexpected number of centres")
    return index, new_layout


def knn_groups(
    pos: Tensor,
    layout: CloudLayout,
    centres: Tensor,
    centre_layout: CloudLayout,
    k: int,
) -> tuple[Tensor, Tensor, int | None]:
    """The ``k`` nearest points (in the same cloud, the centre included) of each centre.

    Returns:
        ``(centre_idx, point_idx, k_uniform)``: edges from centre ``centre_idx[e]`` (index
        into ``centres``) to point ``point_idx[e]`` (index into ``pos``), grouped by centre
        (nearest first with the CPU and pure-torch kernels). ``k_uniform`` is ``k`` when
        every centre got exactly ``k`` neighbours, in which case the edges reshape to
        ``(num_centres, k)``; else ``None``.
        torch_cluster's CUDA kernel handles at most ``k = 100``; larger ``k`` on CUDA
        runs the pure-torch kernel.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InputError(f"k: must be an integer >= 1, got {k!r}")
    kernel = sampling_kernel(pos.device)
    if kernel == "cluster" and pos.device.type == "cuda" and k > CLUSTER_CUDA_MAX_K:
        kernel = "torch"
    if kernel == "torch":
        edge = pure_sampling.knn(
            pos.detach().float(),
            layout.sizes,
            centres.detach().float(),
            centre_layout.sizes,
            k,
            layout.uniform,
            centre_layout.uniform,
        )
    else:
        edge = _cluster().knn(
            pos.detach().float(),
            centres.detach().float(),
            k,
            layout.batch,
            centre_layout.batch,
            batch_size=layout.num_clouds,
        )
    centre_idx, point_idx = edge[0], edge[1]
    m = centres.size(0)
    k_uniform = None
    if layout.uniform is not None and layout.uniform >= k:
        # every cloud has >= k points, and both kernels group their output by centre
        k_uniform = k
    elif centre_idx.numel() == m * k:
        expected = torch.arange(m, device=pos.device).repeat_interleave(k)
        if torch.equal(centre_idx, expected):
            k_uniform = k
    return centre_idx, point_idx, k_uniform
