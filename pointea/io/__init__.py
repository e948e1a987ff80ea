"""Reading users' point clouds and meshes into numpy arrays, and writing coloured PLY files.

Supported inputs:

========================  =============================================================
extension                 read as
========================  =============================================================
``.xyz .txt .pts``        text rows ``x y z [more columns]`` (space or comma separated)
``.pcd``                  PCL point cloud, ``DATA ascii`` / ``binary`` (own parser) and
                          ``binary_compressed`` (through open3d)
``.ply``                  ASCII or binary PLY; a cloud, or a mesh when it has faces
``.off .obj .stl``        triangle / polygon meshes (polygons are fanned into triangles)
``.glb .gltf``            glTF 2.0 scenes (through trimesh; meshes placed by their nodes)
``.h5 .hdf5``             an entry of a ModelNet40 / ShapeNetPart HDF5 file:
                          ``file.h5:17`` or ``file.h5#17`` (``file.h5`` alone: every entry)
========================  =============================================================

Every problem found in a file (missing, empty, truncated, corrupt, unsupported, a mesh
without faces, NaN or infinite coordinates, values too large for float32) is raised as a
:class:`~pointea.errors.DataError` whose message starts with the file name and says what
is wrong; parsers never let a bare ``struct.error`` / ``IndexError`` escape, and sizes
declared in headers are checked against the file size before anything is allocated.

The simple formats are parsed here in bulk with numpy (as fast as trimesh / plyfile,
with errors naming the file and line; open3d's readers return empty geometry on bad
input instead of raising). open3d reads compressed PCD and trimesh reads glTF; both are
imported lazily. See ``docs/READERS.md`` for the measurements.

Colours come out as floats in ``[0, 1]``; every reader decides a file's colour scale by
one rule (:func:`~pointea.io.colors.unit_colors`: the data type first, then the whole
range with a margin), warns when it has a doubt, refuses a scale it cannot tell, and takes
``colour_scale="1"`` or ``"255"`` from a caller who knows. Messages about a row of a text
file name the file's own line (1-based, header and comment lines counted).

Each format lives in its own module (``ply``, ``obj``, ``off``, ``stl``, ``pcd``,
``text``, ``hdf5``, ``gltf``); ``readers`` dispatches on the extension and ``colors``
holds the colour-scale rule.

Typical use::

    cloud = load_points("chair.obj", num_points=1024, seed=0)   # mesh: surface sampled
    pos = prepare_points(cloud.points, 1024, seed=0)             # centre, unit sphere, resample
"""

from __future__ import annotations

from .colors import COLOUR_SCALES, ColourScale, ColourScaleWarning, unit_colors
from .files import display_name
from .geometry import (
    check_points,
    estimate_normals,
    normalize_unit_sphere,
    prepare_points,
    resample_indices,
    sample_surface,
)
from .hdf5 import read_h5_entry
from .inputs import expand_inputs, parse_input_spec
from .readers import load_points, read_mesh, read_point_cloud
from .types import (
    CLOUD_EXTENSIONS,
    HDF5_EXTENSIONS,
    MESH_EXTENSIONS,
    SUPPORTED_EXTENSIONS,
    InputSpec,
    Mesh,
    PointCloud,
)
from .write import write_ply

__all__ = [
    "CLOUD_EXTENSIONS",
    "MESH_EXTENSIONS",
    "HDF5_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "PointCloud",
    "Mesh",
    "InputSpec",
    "parse_input_spec",
    "expand_inputs",
    "read_point_cloud",
    "read_mesh",
    "read_h5_entry",
    "load_points",
    "sample_surface",
    "estimate_normals",
    "check_points",
    "normalize_unit_sphere",
    "resample_indices",
    "prepare_points",
    "write_ply",
    "display_name",
    "ColourScale",
    "COLOUR_SCALES",
    "ColourScaleWarning",
    "unit_colors",
]
