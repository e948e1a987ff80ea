"""Seeing point clouds and predictions: colours, cameras, renders, figures, interactive views.

One module per concept:

* :mod:`.colors` - the label palette, ShapeNetPart part colours / legends, depth and
  height cues;
* :mod:`.camera` - framing a cloud and projecting it to pixels;
* :mod:`.render` - off-screen rendering (open3d's Filament renderer, or a numpy splatter);
* :mod:`.figures` - panels with titles and legends, comparison and grid figures, PNG / PLY;
* :mod:`.interactive` - self-contained plotly HTML pages and open3d windows.

Nothing here runs a model: :func:`pointea.inference.render_prediction_grid` predicts,
then draws through this package. open3d, matplotlib and plotly are imported lazily.

Typical use::

    from pointea import visualization as viz
    img = viz.render_points(pos, viz.part_colors(pred, "Chair"), depth_cue=0.5)
    viz.save_png("chair.png", img)
    viz.write_html("chair.html", viz.labeled_figure(pos, pred, category="Chair"))
"""

from __future__ import annotations

from .camera import Camera, fit_camera, project_points
from .colors import (
    BACKGROUND,
    CORRECT_COLOR,
    ERROR_COLOR,
    HEIGHT_RAMP,
    PALETTE,
    depth_shade,
    height_colors,
    label_colors,
    labels_to_colors,
    palette,
    part_colors,
    part_legend,
)
from .figures import (
    Panel,
    compose,
    export_ply,
    render_comparison,
    render_grid,
    render_labels,
    save_png,
)
from .interactive import (
    cloud_figure,
    figure_html,
    has_display,
    labeled_figure,
    plotly_text,
    screenshot_html,
    show,
    write_html,
)
from .render import MAX_IMAGE_SIZE, check_image_size, release_renderer, render_points

__all__ = [
    "PALETTE",
    "ERROR_COLOR",
    "CORRECT_COLOR",
    "BACKGROUND",
    "HEIGHT_RAMP",
    "MAX_IMAGE_SIZE",
    "Camera",
    "Panel",
    "palette",
    "label_colors",
    "labels_to_colors",
    "part_colors",
    "part_legend",
    "height_colors",
    "depth_shade",
    "fit_camera",
    "project_points",
    "check_image_size",
    "render_points",
    "release_renderer",
    "compose",
    "render_labels",
    "render_comparison",
    "render_grid",
    "save_png",
    "export_ply",
    "cloud_figure",
    "labeled_figure",
    "plotly_text",
    "figure_html",
    "write_html",
    "screenshot_html",
    "has_display",
    "show",
]
