"""Does the installed torch-cluster have kernels for the installed torch's devices?

``scripts/setup.sh`` runs this file by path (``python scripts/setup_check.py``) before
pointea itself is installed, so it imports nothing of pointea. It prints one line,
``<verdict> <explanation>``, where the verdict is one of:

- ``ok``: torch-cluster matches torch (a CPU torch needs only CPU kernels; a CUDA torch
  gets CUDA kernels, ``torch.ops.torch_cluster.cuda_version() != -1``).
- ``missing``: torch-cluster is not installed (or does not load).
- ``rebuild``: torch is a CUDA build, torch-cluster was built without CUDA (a common
  outcome: its build compiles CUDA only when nvcc is found and a GPU is visible or
  ``FORCE_CUDA=1``, and pip's wheel cache, keyed on the source archive and not on the
  torch build, hands back a cached CPU-only wheel), and nvcc is available: rebuild with
  ``FORCE_CUDA=1`` and ``--no-cache-dir``.
- ``fallback``: the same mismatch, but no nvcc to rebuild with: pointea runs FPS and kNN
  on CUDA tensors with its pure-torch kernels (:mod:`pointea.pure_sampling`), slower.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    action: str  # "ok" | "missing" | "rebuild" | "fallback"
    message: str

    def __str__(self) -> str:
        return f"{self.action} {self.message}"


def find_nvcc() -> str | None:
    """Path of nvcc: on ``PATH``, else under ``$CUDA_HOME``/``$CUDA_PATH``/``/usr/local/cuda``."""
    found = shutil.which("nvcc")
    if found:
        return found
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root and os.access(os.path.join(root, "bin", "nvcc"), os.X_OK):
            return os.path.join(root, "bin", "nvcc")
    return None


def diagnose(torch_cuda: str | None, cluster_cuda: int | None, nvcc: str | None) -> Verdict:
    """The verdict for a torch CUDA version (``torch.version.cuda``; ``None`` for a CPU
    build), torch-cluster's ``cuda_version()`` (``-1`` without CUDA; ``None`` when it is
    not installed) and the nvcc found (or ``None``)."""
    if cluster_cuda is None:
        return Verdict("missing", "torch-cluster is not installed (or does not load)")
    if torch_cuda is None:
        return Verdict("ok", "CPU torch; torch-cluster has the CPU kernels it needs")
    if cluster_cuda != -1:
        return Verdict("ok", f"CUDA {torch_cuda} torch; torch-cluster has CUDA kernels")
    if nvcc:
        return Verdict(
            "rebuild",
            f"torch is a CUDA {torch_cuda} build but torch-cluster has no CUDA kernels; "
            f"nvcc at {nvcc}: rebuild with FORCE_CUDA=1 and --no-cache-dir",
        )
    return Verdict(
        "fallback",
        f"torch is a CUDA {torch_cuda} build but torch-cluster has no CUDA kernels and no "
        "nvcc was found: pointea will use its pure-torch FPS/kNN on CUDA tensors (slower; "
        "install the CUDA toolkit and rerun setup.sh for torch-cluster's kernels)",
    )


def probe() -> Verdict:
    """:func:`diagnose` for this Python environment."""
    import torch

    try:
        import torch_cluster  # noqa: F401  (registers torch.ops.torch_cluster)

        cluster_cuda: int | None = int(torch.ops.torch_cluster.cuda_version())
    except (ImportError, OSError, RuntimeError, AttributeError):
        cluster_cuda = None
    return diagnose(torch.version.cuda, cluster_cuda, find_nvcc())


def pyg_wheel_index(torch_version: str, torch_cuda: str | None) -> str:
    """PyG's published wheel page for a torch build, e.g. ``torch-2.5.0+cu124.html``.

    PyG publishes one page per torch minor release (``x.y.0``) and CUDA version.
    """
    major, minor = torch_version.split("+")[0].split(".")[:2]
    tag = "cpu" if torch_cuda is None else "cu" + torch_cuda.replace(".", "")
    return f"https://data.pyg.org/whl/torch-{major}.{minor}.0+{tag}.html"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--wheel-index"]:
        import torch

        print(pyg_wheel_index(torch.__version__, torch.version.cuda))
        return 0
    if args:
        print("usage: python scripts/setup_check.py [--wheel-index]", file=sys.stderr)
        return 2
    print(probe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
