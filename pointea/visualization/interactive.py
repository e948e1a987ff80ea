"""Looking around a cloud: a self-contained plotly HTML page, or an open3d window.

:func:`cloud_figure` builds a plotly 3D scatter (rotate, zoom, hover shows each point's
label); :func:`write_html` writes one or several of them into a single HTML file with
plotly.js inlined, so the page opens with no network access; :func:`figure_html` gives
the same markup for a notebook cell (``IPython.display.HTML``). :func:`show` opens an
interactive open3d window on a desktop. plotly and open3d are imported lazily.

Titles and hover texts are shown literally: plotly reads a subset of HTML in them
(``<a href>``, ``<b>``, ``<br>``, ``<span style>``, entities, ``$...$`` for TeX), so
:func:`plotly_text` escapes them for plotly, after :func:`~pointea.files.safe_name` has
escaped control characters and undecodable bytes.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..files import safe_name
from ..o3d import import_open3d
from ..outputs import HTML_GENERATOR
from .colors import BACKGROUND, as_numpy, labels_to_colors
from .render import check_cloud

__all__ = [
    "cloud_figure",
    "labeled_figure",
    "plotly_text",
    "figure_html",
    "write_html",
    "screenshot_html",
    "has_display",
    "show",
]

_UP_VEC = {"x": (1, 0, 0), "y": (0, 1, 0), "z": (0, 0, 1)}
# plotly decodes &amp; &lt; &gt; and numeric entities in text, but not &quot;; "$" pairs
# would start TeX
_PLOTLY_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "$": "&#36;"})


def plotly_text(text: str | bytes | os.PathLike) -> str:
    """``text`` as a plotly title or hover string that plotly shows literally.

    plotly draws a subset of HTML in those strings (tags such as ``<a href>``, ``<b>``,
    ``<br>``, entities, TeX between ``$``); here ``&``, ``<``, ``>`` and ``$`` become
    entities plotly decodes back, and control characters and undecodable bytes become
    backslash escapes (:func:`~pointea.files.safe_name`).
    """
    return safe_name(text).translate(_PLOTLY_ESCAPES)


def _import_plotly() -> Any:
    try:
        import plotly.graph_objects as go
    except ImportError as exc:  # pragma: no cover - plotly is a dependency
        raise ImportError(
            f"plotly is needed for the interactive view ({exc}); `pip install plotly`"
        ) from exc
    return go


def cloud_figure(
    points: np.ndarray,
    colors: np.ndarray | Sequence[float] | None = None,
    *,
    hover: Sequence[str] | None = None,
    title: str = "",
    point_size: float = 3.0,
    up: str = "y",
    height: int = 520,
) -> Any:
    """A plotly figure of one cloud: drag to rotate, scroll to zoom, hover for labels.

    Args:
        points: ``(N, 3)``.
        colors: ``(N, 3)`` or one ``(3,)`` colour in ``[0, 1]`` (default: the first
            palette colour).
        hover: ``(N,)`` texts shown when the pointer is over a point (its part or class),
            shown literally (:func:`plotly_text`).
        title: shown above the plot, literally.
        point_size: marker size in pixels.
        up: the cloud's up axis (``"x"``, ``"y"`` or ``"z"``).
        height: plot height in pixels.

    Returns:
        a ``plotly.graph_objects.Figure``.
    """
    go = _import_plotly()
    pts, cols = check_cloud(points, colors)
    if up not in _UP_VEC:
        raise InputError(f"up must be 'x', 'y' or 'z', got {up!r}")
    if hover is not None and len(hover) != len(pts):
        raise InputError(f"hover must have one text per point ({len(pts)}), got {len(hover)}")
    if hover is not None:
        escaped = {t: plotly_text(t) for t in set(hover)}  # few distinct names
        hover = [escaped[t] for t in hover]
    c8 = np.round(cols * 255).astype(np.int64)
    marker_colors = [f"rgb({r},{g},{b})" for r, g, b in c8]
    trace = go.Scatter3d(
        x=pts[:, 0],
        y=pts[:, 1],
        z=pts[:, 2],
        mode="markers",
        marker={"size": float(point_size), "color": marker_colors, "line": {"width": 0}},
        hovertext=list(hover) if hover is not None else None,
        hoverinfo="text" if hover is not None else "x+y+z",
        showlegend=False,
    )
    ux, uy, uz = _UP_VEC[up]
    eye = {"x": 1.3, "y": 1.3, "z": 1.3}
    axis = {"visible": False}
    bg = "rgb({},{},{})".format(*(int(round(c * 255)) for c in BACKGROUND))
    fig = go.Figure(trace)
    fig.update_layout(
        title={"text": plotly_text(title)} if title else None,
        height=int(height),
        margin={"l": 0, "r": 0, "t": 40 if title else 0, "b": 0},
        paper_bgcolor=bg,
        scene={
            "xaxis": axis,
            "yaxis": axis,
            "zaxis": axis,
            "aspectmode": "data",
            "camera": {"up": {"x": ux, "y": uy, "z": uz}, "eye": eye},
        },
    )
    return fig


def labeled_figure(
    points: np.ndarray,
    labels: np.ndarray,
    *,
    category: int | str | None = None,
    label_names: Sequence[str] | None = None,
    **kw: Any,
) -> Any:
    """:func:`cloud_figure` coloured by labels as in the PNGs, hover showing each label's
    name (part names with a ShapeNetPart ``category``, else ``label_names``)."""
    from .colors import part_table

    lab = np.asarray(as_numpy(labels), dtype=np.int64).reshape(-1)
    cols, _ = labels_to_colors(lab, category)
    names = part_table()[2] if category is not None else label_names
    hover = [names[i] if names is not None and 0 <= i < len(names) else str(i) for i in lab]
    return cloud_figure(points, cols, hover=hover, **kw)


def figure_html(figure: Any, *, include_plotlyjs: bool = True) -> str:
    """The ``<div>`` of one figure (with plotly.js inlined unless told otherwise), for
    a notebook cell: ``IPython.display.HTML(figure_html(fig))``."""
    return figure.to_html(full_html=False, include_plotlyjs=bool(include_plotlyjs))


def write_html(
    path: str | os.PathLike, figures: Any | Sequence[Any], *, title: str = "pointea"
) -> Path:
    """Write figures into ONE self-contained HTML page (plotly.js inlined once, no network).

    Args:
        path: the ``.html`` file to write (atomically).
        figures: a plotly figure or a sequence of them, stacked down the page.
        title: the page title and heading (shown literally).

    The page names pointea as its generator (a ``<meta>`` tag), by which a later run
    recognises it as its own output (:func:`pointea.outputs.is_pointea_output`).
    """
    from ..files import atomic_write

    figs = list(figures) if isinstance(figures, (list, tuple)) else [figures]
    if not figs:
        raise InputError("write_html needs at least one figure")
    title = html.escape(safe_name(title))
    body = "\n".join(
        f'<section class="cloud">{figure_html(f, include_plotlyjs=i == 0)}</section>'
        for i, f in enumerate(figs)
    )
    page = (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8">{HTML_GENERATOR}'
        f"<title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:1em;background:#fff}"
        ".cloud{margin-bottom:1.5em;border-bottom:1px solid #ddd}</style>"
        f"</head><body><h1>{title}</h1>\n{body}\n</body></html>\n"
    )
    data = page.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data))


#: headless Chromium with software WebGL and every request sent to a closed local port
CHROMIUM_OFFLINE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",
    "--use-angle=swiftshader",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
)


def screenshot_html(
    page: str | os.PathLike, png: str | os.PathLike, size: tuple[int, int] = (900, 640)
) -> Path | None:
    """A PNG of an HTML page as headless Chromium draws it, with no network access.

    Every request goes to a closed local port, so the page must be self-contained (as
    :func:`write_html` makes it). Returns the PNG's path, or ``None`` when Chromium is
    not installed (``apt-get install chromium``) or drew nothing.
    """
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return None
    png = Path(png)
    cmd = [
        chromium,
        *CHROMIUM_OFFLINE_FLAGS,
        "--hide-scrollbars",
        f"--window-size={size[0]},{size[1]}",
        "--virtual-time-budget=5000",
        f"--screenshot={png.resolve()}",
        Path(page).resolve().as_uri(),
    ]
    subprocess.run(cmd, capture_output=True, timeout=300, check=False)
    return png if png.is_file() else None


def has_display() -> bool:
    """Whether an interactive window can open (Linux needs DISPLAY or WAYLAND_DISPLAY)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def show(
    points: np.ndarray,
    colors: np.ndarray | None = None,
    *,
    labels: np.ndarray | None = None,
    category: int | str | None = None,
    window_name: str = "pointea",
    point_size: float = 5.0,
) -> None:
    """Open an interactive open3d window (rotate with the mouse; close it to return).

    Args:
        points: ``(N, 3)``.
        colors: ``(N, 3)`` colours; or give ``labels`` (and a ShapeNetPart ``category``)
            to colour by label as in the off-screen figures.

    Raises:
        RuntimeError: no display (use :func:`render_points` + :func:`save_png` instead).
    """
    if not has_display():
        raise RuntimeError(
            "no display available (DISPLAY is not set): render to a PNG "
            "with render_points/save_png instead"
        )
    if colors is None and labels is not None:
        colors = labels_to_colors(np.asarray(as_numpy(labels), dtype=np.int64), category, None)[0]
    o3d = import_open3d()
    pts, cols = check_cloud(points, colors)
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
    pcd.colors = o3d.utility.Vector3dVector(cols)
    vis = o3d.visualization.Visualizer()
    if not vis.create_window(window_name=window_name, width=960, height=720):
        raise RuntimeError("open3d could not open a window on this display")
    vis.add_geometry(pcd)
    vis.get_render_option().point_size = float(point_size)
    vis.get_render_option().background_color = np.asarray(BACKGROUND)
    vis.run()
    vis.destroy_window()
