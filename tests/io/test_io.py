"""Readers of users' files (pointea.io): every format, every kind of bad file."""

from __future__ import annotations

import h5py
import numpy as np
import open3d as o3d
import pytest
import torch
from pointea_testing import off_text, pcd_bytes, ply_bytes, stl_ascii, stl_binary

from pointea import io
from pointea.errors import DataError

RNG = np.random.default_rng(0)
PTS = RNG.normal(size=(50, 3))
NRM = PTS / np.linalg.norm(PTS, axis=1, keepdims=True)

# A unit square in the z=0 plane as two triangles (area 1), and as one quad.
SQUARE_V = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=np.float64)


# ------------------------------------------------------------------ fixture writers


def write(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return p


# ------------------------------------------------------------------ good files
@pytest.mark.parametrize("fmt", ["ascii", "binary_little_endian", "binary_big_endian"])
def test_ply_cloud_formats(tmp_path, fmt):
    lab = np.arange(len(PTS)) % 4
    p = write(tmp_path, "c.ply", ply_bytes(PTS, fmt, labels=lab))
    cloud = io.read_point_cloud(p)
    np.testing.assert_allclose(cloud.points, PTS.astype(np.float32), rtol=1e-6)
    np.testing.assert_array_equal(cloud.labels, lab)
    assert "c.ply" in repr(cloud) and len(cloud) == 50


@pytest.mark.parametrize("fmt", ["ascii", "binary_little_endian"])
def test_ply_mesh_is_sampled(tmp_path, fmt):
    p = write(tmp_path, "m.ply", ply_bytes(SQUARE_V, fmt, faces=[[0, 1, 2, 3]]))
    mesh = io.read_mesh(p)
    assert mesh.faces.shape == (2, 3)  # quad fanned into two triangles
    cloud = io.load_points(p, 300, seed=1)
    assert len(cloud) == 300 and cloud.meta["surface_sampled"]
    assert np.allclose(cloud.points[:, 2], 0) and cloud.points[:, :2].min() >= 0
    # surface=False keeps the vertices
    assert len(io.load_points(p, 300, surface=False)) == 4


def test_ply_mixed_polygon_sizes_binary(tmp_path):
    v = np.vstack([SQUARE_V, [[2, 0, 0]]])
    p = write(
        tmp_path, "m.ply", ply_bytes(v, "binary_little_endian", faces=[[0, 1, 2, 3], [1, 4, 2]])
    )
    assert io.read_mesh(p).faces.shape == (3, 3)


@pytest.mark.parametrize("mode", ["ascii", "binary"])
def test_pcd(tmp_path, mode):
    p = write(tmp_path, "c.pcd", pcd_bytes(PTS, mode, "x y z normal_x normal_y normal_z", NRM))
    cloud = io.read_point_cloud(p)
    np.testing.assert_allclose(cloud.points, PTS.astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(cloud.normals, NRM.astype(np.float32), rtol=1e-6)


def test_pcd_compressed_through_open3d(tmp_path):
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(PTS))
    path = str(tmp_path / "c.pcd")
    o3d.io.write_point_cloud(path, pc, write_ascii=False, compressed=True)
    cloud = io.read_point_cloud(path)
    np.testing.assert_allclose(cloud.points, PTS, atol=1e-5)


@pytest.mark.parametrize("name,sep", [("c.xyz", " "), ("c.txt", ","), ("c.pts", " ")])
def test_text_clouds(tmp_path, name, sep):
    body = "\n".join(sep.join(repr(float(v)) for v in r) for r in PTS)
    p = write(tmp_path, name, "# a comment\n" + body + "\n\n")
    np.testing.assert_allclose(io.read_point_cloud(p).points, PTS)


def test_text_cloud_shapenetpart_rows_give_normals_and_labels(tmp_path):
    lab = np.arange(len(PTS)) % 3 + 12
    rows = np.column_stack([PTS, NRM, lab])
    p = write(tmp_path, "s.txt", "\n".join(" ".join(f"{v:.6f}" for v in r) for r in rows))
    cloud = io.read_point_cloud(p)
    np.testing.assert_allclose(cloud.normals, NRM, atol=1e-5)
    np.testing.assert_array_equal(cloud.labels, lab)


def test_text_cloud_colours_and_header_row(tmp_path):
    rows = np.column_stack([PTS, np.full((len(PTS), 3), 128)])
    p = write(tmp_path, "c.xyz", "x y z r g b\n" + "\n".join(" ".join(map(str, r)) for r in rows))
    cloud = io.read_point_cloud(p)
    assert cloud.normals is None and np.allclose(cloud.colors, 128 / 255)


def test_pts_with_count_line(tmp_path):
    rows = "\n".join(f"{a} {b} {c} 10 255 0 0" for a, b, c in PTS)
    cloud = io.read_point_cloud(write(tmp_path, "c.pts", f"{len(PTS)}\n{rows}\n"))
    assert len(cloud) == len(PTS) and np.allclose(cloud.colors, [1, 0, 0])


def test_off_variants(tmp_path):
    p = write(tmp_path, "a.off", "# comment\n" + off_text(SQUARE_V, [[0, 1, 2, 3]]))
    assert io.read_mesh(p).faces.shape == (2, 3)
    # ModelNet40's glued header "OFF4 1 0"
    glued = off_text(SQUARE_V, [[0, 1, 2, 3]], header="OFF4 1 0")
    assert io.read_mesh(write(tmp_path, "b.off", glued)).faces.shape == (2, 3)


def test_obj_faces_with_slashes_and_negative_indices(tmp_path):
    text = (
        "o sq\n" + "".join(f"v {a} {b} {c}\n" for a, b, c in SQUARE_V) + "vn 0 0 1\n"
        "f 1/1/1 2/2/1 3/3/1\nf -4//1 -2//1 -1//1\n"
    )
    mesh = io.read_mesh(write(tmp_path, "a.obj", text))
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 2, 3]])


def test_stl_binary_and_ascii(tmp_path):
    tris = SQUARE_V[[[0, 1, 2], [0, 2, 3]]]
    # A binary STL whose header starts with "solid" must still be read as binary.
    for name, content in [
        ("b.stl", stl_binary(tris, b"solid but binary")),
        ("a.stl", stl_ascii(tris)),
    ]:
        mesh = io.read_mesh(write(tmp_path, name, content))
        np.testing.assert_allclose(mesh.vertices[mesh.faces], tris)


def test_open3d_written_files_read_the_same(tmp_path):
    mesh = o3d.geometry.TriangleMesh.create_box(1.0, 2.0, 3.0)
    mesh.compute_triangle_normals()  # open3d writes STL only with them
    for ext, ascii_ in [
        ("off", True),
        ("obj", True),
        ("ply", False),
        ("ply", True),
        ("stl", False),
    ]:
        path = str(tmp_path / f"box_{ascii_}.{ext}")
        o3d.io.write_triangle_mesh(path, mesh, write_ascii=ascii_)
        m = io.read_mesh(path)
        assert len(m.faces) == 12
        np.testing.assert_allclose(m.vertices.min(0), [0, 0, 0], atol=1e-6)
        np.testing.assert_allclose(m.vertices.max(0), [1, 2, 3], atol=1e-6)


def test_h5_entries(tmp_path):
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f["data"] = RNG.normal(size=(3, 64, 3)).astype(np.float32)
        f["label"] = np.array([[4], [2], [7]], dtype=np.uint8)
        f["pid"] = np.zeros((3, 64), dtype=np.uint8)
    for spec in (f"{path}:1", f"{path}#1"):
        cloud = io.load_points(spec)
        assert len(cloud) == 64 and cloud.meta["label"] == 2 and cloud.labels.shape == (64,)
        assert cloud.source.endswith(":1")
    assert [s.index for s in io.expand_inputs([str(path)])] == [0, 1, 2]
    with pytest.raises(DataError, match=r"d\.h5.*entry 5 does not exist.*3 shapes"):
        io.load_points(f"{path}:5")
    assert io.parse_input_spec(r"C:\data\x.ply").index is None


# ------------------------------------------------------------------ bad files
BAD_FILES = [
    ("empty.xyz", b"", "empty"),
    ("blank.xyz", b"\n\n  \n", "empty"),
    ("comments.xyz", b"# nothing\n", "no data rows"),
    ("short.xyz", b"1 2 3\n4 5\n", "line 2"),
    ("word.xyz", b"1 2 3\n4 five 6\n", "line 2.*'five' is not a number"),
    ("nan.xyz", b"1 2 3\nnan 1 1\n", "1 of 2 points have NaN"),
    ("inf.txt", b"1 2 3\n1 inf 1\n", "NaN or infinite"),
    ("huge.xyz", b"1 2 3\n1e39 1 1\n", "too large"),
    ("binary.xyz", b"\x00\x01\x02", "not a text file"),
    ("noply.ply", b"plx\n", "not a PLY file"),
    ("nohead.ply", b"ply\nformat ascii 1.0\nelement vertex 2\n", "end_header"),
    ("badfmt.ply", b"ply\nformat weird 1.0\nend_header\n", "unknown format"),
    (
        "noxyz.ply",
        b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float q\nend_header\n1\n",
        "no property x",
    ),
    ("trunc_a.ply", ply_bytes(PTS[:5], "ascii")[:-40], "truncated|line"),
    ("trunc_b.ply", ply_bytes(PTS[:5], "binary_little_endian")[:-7], "truncated"),
    (
        "absurd.ply",
        b"ply\nformat binary_little_endian 1.0\nelement vertex 99999999999\n"
        b"property float x\nproperty float y\nproperty float z\nend_header\n\0\0\0\0",
        "truncated.*99999999999",
    ),
    ("badface.ply", ply_bytes(PTS[:3], "ascii", faces=[[0, 1, 9]]), "vertex 9.*3 vertices"),
    ("noface.off", off_text(SQUARE_V, []), "no faces"),
    ("trunc.off", off_text(SQUARE_V, [[0, 1, 2]])[:-8], "truncated|malformed"),
    ("notoff.off", "COF\n1 2 3\n", "not an OFF file"),
    ("badcount.off", "OFF\nx y z\n", "bad OFF counts"),
    ("range.off", off_text(SQUARE_V, [[0, 1, 7]]), "vertex 7"),
    ("noface.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\n", "no faces"),
    ("range.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n", "line 4.*vertex 4"),
    ("zero.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", "index 0"),
    ("nan.obj", "v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n", "NaN"),
    ("noface.stl", stl_binary([]), "no faces"),
    ("trunc.stl", stl_binary(SQUARE_V[[[0, 1, 2], [0, 2, 3]]])[:-30], "truncated"),
    ("tiny.stl", b"abc", "not an STL file"),
    ("trunc_ascii.stl", stl_ascii(SQUARE_V[[[0, 1, 2]]])[:70], "truncated|multiple"),
    ("nodata.pcd", b"VERSION 0.7\nFIELDS x y z\n", "no DATA"),
    ("trunc.pcd", pcd_bytes(PTS[:10], "binary")[:-5], "truncated"),
    ("trunc_a.pcd", pcd_bytes(PTS[:10], "ascii").rsplit(b"\n", 4)[0], "truncated"),
    (
        "nofield.pcd",
        pcd_bytes(PTS[:3], "ascii").replace(b"FIELDS x y z", b"FIELDS a b c"),
        "no field x",
    ),
    ("mismatch.pcd", pcd_bytes(PTS[:3], "ascii").replace(b"SIZE 4 4 4", b"SIZE 4 4"), "disagree"),
    ("zero.pcd", pcd_bytes(PTS[:0], "ascii"), "empty"),
    ("data.foo", b"1 2 3\n", "unsupported file extension .foo"),
    ("noext", b"1 2 3\n", "unsupported file extension"),
]


@pytest.mark.parametrize("name,content,pattern", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_raise_data_error_naming_the_file(tmp_path, name, content, pattern):
    p = write(tmp_path, name, content)
    with pytest.raises(DataError, match=pattern) as info:
        io.load_points(p, 64)
    msg = str(info.value)
    assert msg.startswith(str(p)) and "\n" not in msg


def test_missing_and_folder(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        io.load_points(tmp_path / "nope.ply")
    (tmp_path / "dir.ply").mkdir()
    with pytest.raises(DataError, match="is a folder"):
        io.load_points(tmp_path / "dir.ply")


def test_ply_without_faces_is_not_a_mesh(tmp_path):
    p = write(tmp_path, "c.ply", ply_bytes(PTS, "ascii"))
    with pytest.raises(DataError, match="no faces"):
        io.read_mesh(p)


def test_drop_nonfinite(tmp_path):
    p = write(tmp_path, "n.xyz", "1 2 3\nnan 0 0\n4 5 6\n")
    with pytest.warns(UserWarning, match="dropped 1 of 3"):
        cloud = io.load_points(p, drop_nonfinite=True)
    assert len(cloud) == 2


# ------------------------------------------------------------------ normalisation, sampling
def test_normalize_matches_training_transform():
    from torch_geometric.data import Data

    from pointea.transforms import NormalizeUnitSphere

    pts = RNG.normal(size=(200, 3)) * 5 + 3
    ours, centre, scale = io.normalize_unit_sphere(pts)
    ref = NormalizeUnitSphere()(Data(pos=torch.tensor(pts, dtype=torch.float64))).pos
    np.testing.assert_allclose(ours, ref.numpy(), atol=1e-6)
    np.testing.assert_allclose((pts - centre) / scale, ours, atol=1e-6)
    assert np.isclose(np.linalg.norm(ours, axis=1).max(), 1.0)


@pytest.mark.parametrize(
    "pts", [np.array([[3.0, 4.0, 5.0]]), np.full((10, 3), 7.0)], ids=["single", "identical"]
)
def test_zero_extent_clouds_are_centred_not_divided_by_zero(pts, tmp_path):
    out, centre, scale = io.normalize_unit_sphere(pts)
    assert scale == 1.0 and np.all(out == 0) and np.allclose(centre, pts[0])
    p = write(tmp_path, "one.xyz", "\n".join(" ".join(map(str, r)) for r in pts))
    pos, idx = io.prepare_points(io.load_points(p).points, 16)
    assert pos.shape == (16, 3) and np.all(np.isfinite(pos))


def test_huge_coordinates_do_not_overflow():
    pts = RNG.normal(size=(100, 3)) * 1e37  # squares would overflow float64 at ~1e154 only,
    pts[0] = 3e38  # but float32 casts and sums must stay finite
    out, _, _ = io.normalize_unit_sphere(pts)
    assert np.all(np.isfinite(out)) and np.isclose(np.abs(np.linalg.norm(out, axis=1)).max(), 1)


def test_duplicate_points_and_resampling():
    pts = np.repeat(RNG.normal(size=(5, 3)), 4, axis=0)  # every point 4 times
    pos, idx = io.prepare_points(pts, 64, seed=3)
    assert pos.shape == (64, 3) and set(range(20)) <= set(idx.tolist())
    pos2, idx2 = io.prepare_points(pts, 64, seed=3)
    np.testing.assert_array_equal(idx, idx2)
    _, sub = io.prepare_points(RNG.normal(size=(100, 3)), 30)
    assert len(set(sub.tolist())) == 30  # no repeats when there are enough points


def test_surface_sampling_is_area_weighted_and_seeded():
    # Two triangles: area 0.5 (x in [0,1]) and area 1.5 (x in [2,5]).
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 0, 0], [5, 0, 0], [2, 1, 0]], float)
    mesh = io.Mesh(v, np.array([[0, 1, 2], [3, 4, 5]]), "t")
    pts, nrm = io.sample_surface(mesh, 8000, seed=0)
    share = np.mean(pts[:, 0] >= 2)
    assert abs(share - 0.75) < 0.02
    assert np.allclose(np.abs(nrm[:, 2]), 1)
    # inside the triangles: x + y <= 1 (first), (x - 2) / 3 + y <= 1 (second)
    first = pts[pts[:, 0] < 2]
    assert np.all(first[:, 0] + first[:, 1] <= 1 + 1e-9)
    # uniform inside a triangle: the centroid of the samples is the triangle's centroid
    np.testing.assert_allclose(first[:, :2].mean(0), [1 / 3, 1 / 3], atol=0.02)
    again, _ = io.sample_surface(mesh, 8000, seed=0)
    np.testing.assert_array_equal(pts, again)
    assert not np.array_equal(pts, io.sample_surface(mesh, 8000, seed=1)[0])


def test_degenerate_mesh_has_no_surface(tmp_path):
    p = write(tmp_path, "flat.off", off_text(np.zeros((3, 3)), [[0, 1, 2]]))
    with pytest.raises(DataError, match="zero total area"):
        io.load_points(p)


# ------------------------------------------------------------------ writing
@pytest.mark.parametrize("binary", [True, False])
def test_write_ply_round_trip(tmp_path, binary):
    lab = np.arange(len(PTS)) % 5
    cols = RNG.random((len(PTS), 3))
    path = io.write_ply(
        tmp_path / "out.ply", PTS, colors=cols, normals=NRM, labels=lab, binary=binary
    )
    back = io.read_point_cloud(path)
    np.testing.assert_allclose(back.points, PTS, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(back.labels, lab)
    np.testing.assert_allclose(back.colors, np.round(cols * 255) / 255, atol=1e-9)
    np.testing.assert_allclose(back.normals, NRM, atol=1e-6)
    pc = o3d.io.read_point_cloud(str(path))
    np.testing.assert_allclose(np.asarray(pc.points), PTS, atol=1e-5)
    np.testing.assert_allclose(np.asarray(pc.colors), np.round(cols * 255) / 255, atol=1e-6)


def test_byte_order_mark_and_crlf(tmp_path):
    p = write(tmp_path, "bom.xyz", "\ufeff1 2 3\r\n4 5 6\r\n".encode("utf-8"))
    np.testing.assert_allclose(io.read_point_cloud(p).points, [[1, 2, 3], [4, 5, 6]])
    crlf = ply_bytes(PTS[:4], "ascii").replace(b"\n", b"\r\n")
    np.testing.assert_allclose(
        io.read_point_cloud(write(tmp_path, "crlf.ply", crlf)).points, PTS[:4], rtol=1e-6
    )


def test_nan_message_says_how_to_skip(tmp_path):
    with pytest.raises(DataError, match="drop-nonfinite"):
        io.load_points(write(tmp_path, "n.xyz", "1 2 3\nnan 0 0\n"))


def test_expand_inputs_walks_folders(tmp_path):
    (tmp_path / "a").mkdir()
    write(tmp_path / "a", "x.xyz", "1 2 3\n")
    write(tmp_path, "b.obj", "v 0 0 0\n")
    write(tmp_path, "notes.md", "not a cloud")
    got = [str(s) for s in io.expand_inputs([tmp_path])]
    assert got == [str(tmp_path / "a" / "x.xyz"), str(tmp_path / "b.obj")]
    (tmp_path / "empty").mkdir()
    (err,) = list(io.expand_inputs([tmp_path / "empty"]))
    assert isinstance(err, DataError) and "no supported files" in str(err)


def test_estimate_normals_on_a_sphere_point_outward():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(800, 3))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    nrm = io.estimate_normals(pts * 3 + 5, k=12, chunk=100)  # shifted, scaled, chunked
    np.testing.assert_allclose(np.linalg.norm(nrm, axis=1), 1, atol=1e-9)
    assert np.median((nrm * pts).sum(axis=1)) > 0.98  # radial and outward
    with pytest.raises(ValueError, match="N >= 3"):
        io.estimate_normals(np.zeros((2, 3)))
