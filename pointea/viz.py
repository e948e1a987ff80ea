"""Backward-compatible alias of :mod:`pointea.visualization` (``from pointea import viz``).

New code imports :mod:`pointea.visualization`; the prediction grid, which runs a model,
lives in :mod:`pointea.inference` and is reachable here as ``viz.render_prediction_grid``.
"""

from __future__ import annotations

from typing import Any

from .visualization import *  # noqa: F403
from .visualization import __all__ as _visualization_all

__all__ = [*_visualization_all, "render_prediction_grid"]  # noqa: F405


def __getattr__(name: str) -> Any:
    if name == "render_prediction_grid":  # lazy: the inference layer imports torch
        from .inference import render_prediction_grid

        return render_prediction_grid
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
