"""glTF 2.0 meshes (``.glb`` binary, ``.gltf`` JSON), read through trimesh.

glTF is the format most modern 3D assets ship in; parsing it (buffers, accessors, the
node hierarchy and its transforms) is trimesh's trade, so pointea hands it over and keeps
its own guarantees around the call: the file must be a regular file; a GLB's header
(magic, version, declared length) is checked against the file size before trimesh reads
a byte; whatever trimesh raises becomes one :class:`DataError` naming the file. Every
mesh of the scene is placed by its node transform and concatenated.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from .files import fail, first_line, read_bytes
from .types import Mesh

__all__ = ["read_gltf"]


def _check_glb(path: Path, data: bytes) -> None:
    if len(data) < 12 or data[:4] != b"glTF":
        raise fail(path, "not a GLB file (does not start with the 'glTF' magic)")
    version, length = struct.unpack_from("<II", data, 4)
    if version != 2:
        raise fail(path, f"GLB version {version} is not supported (glTF 2.0 only)")
    if length > len(data):
        raise fail(
            path, f"truncated: the GLB header declares {length} bytes, the file holds {len(data)}"
        )


def read_gltf(path: Path) -> Mesh:
    """All triangles of a glTF / GLB scene, in world coordinates."""
    data = read_bytes(path)
    if path.suffix.lower() == ".glb":
        _check_glb(path, data)
    try:
        import trimesh
    except ImportError:
        raise fail(path, "reading glTF needs trimesh (pip install trimesh)") from None
    try:
        # from the path (not the bytes): a .gltf names its buffers relative to its folder
        scene = trimesh.load(
            str(path), file_type=path.suffix.lower()[1:], force="scene", process=False
        )
        geometry = scene.dump(concatenate=False) if hasattr(scene, "dump") else [scene]
    except MemoryError:
        raise fail(path, "too large to read into memory") from None
    except Exception as exc:  # noqa: BLE001 - any failure of the library is a bad file
        raise fail(
            path, f"corrupt or unsupported glTF ({type(exc).__name__}: {first_line(exc)[:120]})"
        ) from exc
    meshes = [g for g in geometry if len(getattr(g, "faces", ())) > 0]
    if not meshes:
        raise fail(path, "the glTF scene holds no triangle meshes (points or lines only?)")
    verts, faces, base = [], [], 0
    for m in meshes:
        verts.append(np.asarray(m.vertices, np.float64))
        faces.append(np.asarray(m.faces, np.int64) + base)
        base += len(m.vertices)
    return Mesh(np.concatenate(verts), np.concatenate(faces), str(path))
