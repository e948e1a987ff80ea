"""Downloads with a faked network layer; safe, atomic extraction; the offline message."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import shutil
import tarfile
import urllib.error
import zipfile
from pathlib import Path

import pytest
from pointea_testing import MN_HDF5, write_modelnet_hdf5, write_shapenet_hdf5

from pointea.cli.data import main as data_main
from pointea.datasets import ModelNet40, ShapeNetPart
from pointea.datasets import download as dl
from pointea.errors import DownloadError


def _zip_folder(folder: Path, arcroot: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, f"{arcroot}/{p.relative_to(folder)}")
    return buf.getvalue()


def _pin(monkeypatch, key: str, payload: bytes) -> dl.ArchiveInfo:
    """Record ``payload``'s size and sha256 as the published ones of archive ``key``."""
    info = dataclasses.replace(dl.ARCHIVES[key], size_bytes=len(payload),
                               sha256=hashlib.sha256(payload).hexdigest())
    monkeypatch.setitem(dl.ARCHIVES, key, info)
    return info


@pytest.fixture
def modelnet_zip(tmp_path_factory, monkeypatch) -> bytes:
    """A tiny ModelNet40 zip, pinned as the published archive (the real one is pinned)."""
    src = tmp_path_factory.mktemp("src")
    write_modelnet_hdf5(src)
    payload = _zip_folder(src / MN_HDF5, MN_HDF5)
    _pin(monkeypatch, "modelnet40", payload)
    return payload


class FakeNet:
    """Replaces ``open_url``: per-URL payloads, failures, truncation; records calls."""

    def __init__(self, payloads: dict[str, bytes | Exception], claim: int | None = None):
        self.payloads = payloads
        self.claim = claim
        self.calls: list[str] = []

    def __call__(self, url: str, timeout: float = 60.0):
        self.calls.append(url)
        p = self.payloads.get(url, urllib.error.URLError("offline"))
        if isinstance(p, Exception):
            raise p
        return io.BytesIO(p), (self.claim if self.claim is not None else len(p))


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


URLS = dl.ARCHIVES["modelnet40"].urls


def test_download_then_read(tmp_path, monkeypatch, modelnet_zip):
    net = FakeNet({URLS[0]: modelnet_zip})
    monkeypatch.setattr(dl, "open_url", net)
    ds = ModelNet40(tmp_path, "test", download=True)
    assert len(ds) == 5 and net.calls == [URLS[0]]
    assert _leftovers(tmp_path) == [MN_HDF5, "processed"]  # zip removed, no .part
    ModelNet40(tmp_path, "test", download=True)  # already there: no network
    assert net.calls == [URLS[0]]


def test_mirror_used_when_the_host_is_down(tmp_path, monkeypatch, modelnet_zip):
    net = FakeNet({URLS[0]: urllib.error.HTTPError(URLS[0], 503, "down", {}, None),
                   URLS[1]: modelnet_zip})
    monkeypatch.setattr(dl, "open_url", net)
    folder = dl.download_archive("modelnet40", tmp_path, progress=False)
    assert folder == tmp_path / MN_HDF5 and net.calls == list(URLS)


def test_offline_message_says_what_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "open_url", FakeNet({}))
    with pytest.raises(DownloadError) as info:
        ModelNet40(tmp_path, "train", download=True)
    msg = str(info.value)
    for url in URLS:
        assert url in msg
    assert "modelnet40_ply_hdf5_2048.zip" in msg
    assert str(tmp_path / MN_HDF5 / "shape_names.txt") in msg
    assert str(tmp_path / "modelnet40_ply_hdf5_2048.zip") in msg
    assert "offline" in msg
    assert _leftovers(tmp_path) == []


def test_error_page_is_not_taken_for_the_archive(tmp_path, monkeypatch, modelnet_zip):
    net = FakeNet({URLS[0]: b"<html>Service unavailable</html>", URLS[1]: modelnet_zip})
    monkeypatch.setattr(dl, "open_url", net)
    assert dl.download_archive("modelnet40", tmp_path, progress=False).is_dir()
    assert net.calls == list(URLS)
    sn_urls = dl.ARCHIVES["shapenetpart"].urls
    monkeypatch.setattr(dl, "open_url", FakeNet({u: b"<html></html>" for u in sn_urls}))
    with pytest.raises(DownloadError, match="not a zip or tar archive"):
        dl.download_archive("shapenetpart", tmp_path, progress=False)
    assert _leftovers(tmp_path) == [MN_HDF5]


def test_unsafe_downloaded_archive_is_deleted(tmp_path, monkeypatch):
    payload = _zip_with({"modelnet40_ply_hdf5_2048/a.txt": b"1", "../evil": b"x"})
    _pin(monkeypatch, "modelnet40", payload)
    monkeypatch.setattr(dl, "open_url", FakeNet({URLS[0]: payload}))
    with pytest.raises(DownloadError, match="refused.*\n.*downloaded archive was deleted"):
        dl.download_archive("modelnet40", tmp_path, progress=False)
    assert _leftovers(tmp_path) == []


def test_incomplete_read_is_a_download_error(tmp_path, monkeypatch):
    import http.client

    class Incomplete(io.BytesIO):
        def read(self, n=-1):
            raise http.client.IncompleteRead(b"abc", 10)

    monkeypatch.setattr(dl, "open_url", lambda url, timeout=60: (Incomplete(), 100))
    with pytest.raises(DownloadError, match="IncompleteRead"):
        dl.fetch("https://example.invalid/a.zip", tmp_path / "a.zip", progress=False)
    assert _leftovers(tmp_path) == []


def test_truncated_transfer_never_looks_complete(tmp_path, monkeypatch, modelnet_zip):
    net = FakeNet({u: modelnet_zip[:1000] for u in URLS}, claim=len(modelnet_zip))
    monkeypatch.setattr(dl, "open_url", net)
    with pytest.raises(DownloadError, match="truncated: received 1000 of"):
        dl.download_archive("modelnet40", tmp_path, progress=False)
    assert _leftovers(tmp_path) == []


def test_stream_error_midway_removes_partial(tmp_path, monkeypatch):
    class Broken(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 10:
                raise ConnectionResetError("reset by peer")
            return super().read(11)

    monkeypatch.setattr(dl, "open_url", lambda url, timeout=60: (Broken(b"x" * 100), 100))
    with pytest.raises(DownloadError, match="transfer failed after 11 bytes"):
        dl.fetch("https://example.invalid/a.zip", tmp_path / "a.zip", progress=False)
    assert _leftovers(tmp_path) == []


def test_checksum_mismatch_deletes_the_download(tmp_path, monkeypatch, modelnet_zip):
    info = dataclasses.replace(dl.ARCHIVES["modelnet40"], sha256="0" * 64)
    monkeypatch.setattr(dl, "open_url", FakeNet({u: modelnet_zip for u in URLS}))
    with pytest.raises(DownloadError) as exc:
        dl.download_archive(info, tmp_path, progress=False)
    assert "checksum mismatch" in str(exc.value) and "deleted" in str(exc.value)
    assert _leftovers(tmp_path) == []


def test_checksum_and_size_match(tmp_path, monkeypatch, modelnet_zip):
    info = dataclasses.replace(dl.ARCHIVES["modelnet40"],
                               sha256=hashlib.sha256(modelnet_zip).hexdigest(),
                               size_bytes=len(modelnet_zip))
    monkeypatch.setattr(dl, "open_url", FakeNet({URLS[0]: modelnet_zip}))
    assert dl.download_archive(info, tmp_path, progress=False).is_dir()


def test_hand_placed_archive_is_used_without_network(tmp_path, monkeypatch, modelnet_zip):
    def no_network(*a, **k):
        raise AssertionError("network used")

    monkeypatch.setattr(dl, "open_url", no_network)
    (tmp_path / "modelnet40_ply_hdf5_2048.zip").write_bytes(modelnet_zip)
    assert len(ModelNet40(tmp_path, "test", download=True)) == 5
    # a hand-placed archive is never deleted, neither after extraction ...
    assert (tmp_path / "modelnet40_ply_hdf5_2048.zip").read_bytes() == modelnet_zip
    # ... nor when its checksum is wrong: that is reported and the file left in place
    shutil.rmtree(tmp_path / MN_HDF5)
    info = dataclasses.replace(dl.ARCHIVES["modelnet40"], sha256="1" * 64)
    with pytest.raises(DownloadError, match="checksum mismatch.*left in place"):
        dl.download_archive(info, tmp_path)
    assert (tmp_path / "modelnet40_ply_hdf5_2048.zip").read_bytes() == modelnet_zip


def test_published_hdf5_data_folder_is_renamed(tmp_path, monkeypatch, tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    write_shapenet_hdf5(src, folder_name="hdf5_data")
    payload = _zip_folder(src / "hdf5_data", "hdf5_data")
    url = dl.ARCHIVES["shapenetpart_hdf5"].urls[0]
    monkeypatch.setattr(dl, "open_url", FakeNet({url: payload}))
    ds = ShapeNetPart(tmp_path, "test", format="hdf5", download=True)
    assert len(ds) == 3 and (tmp_path / "shapenet_part_seg_hdf5_data").is_dir()


# ----------------------------------------------------------------- unsafe archives
def _zip_with(entries: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, target)
    return buf.getvalue()


@pytest.mark.parametrize(
    "entries, links, match",
    [
        ({"ok/a.txt": b"1", "../evil.txt": b"x"}, None, r"'\.\.'"),
        ({"ok/a.txt": b"1", "ok/../../evil.txt": b"x"}, None, r"'\.\.'"),
        ({"/tmp/abs_evil.txt": b"x"}, None, "absolute path"),
        ({"C:/evil.txt": b"x"}, None, "absolute path"),
        ({"ok/a.txt": b"1"}, {"ok/link": "/etc/passwd"}, "symbolic link"),
    ],
)
def test_unsafe_zip_entries_are_refused(tmp_path, entries, links, match):
    archive = tmp_path / "a.zip"
    archive.write_bytes(_zip_with(entries, links))
    target = tmp_path / "out"
    with pytest.raises(DownloadError, match=match) as info:
        dl.extract_archive(archive, target, "folder")
    assert str(archive) in str(info.value)
    assert not (target / "folder").exists() and _leftovers(target) == []
    assert not (tmp_path / "evil.txt").exists()


def _tar_with(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tf:
        for m in members:
            payload = data.get(m.name)
            if payload is not None:
                m.size = len(payload)
                tf.addfile(m, io.BytesIO(payload))
            else:
                tf.addfile(m)


def _member(name, kind=tarfile.REGTYPE, link=""):
    m = tarfile.TarInfo(name)
    m.type = kind
    m.linkname = link
    return m


@pytest.mark.parametrize(
    "member, match",
    [
        (_member("d/link", tarfile.SYMTYPE, "/etc/passwd"), "leaves the target"),
        (_member("d/link", tarfile.SYMTYPE, "../../outside"), "leaves the target"),
        (_member("d/hard", tarfile.LNKTYPE, "../outside"), "leaves the target"),
        (_member("d/../../x"), r"'\.\.'"),
        (_member("/abs"), "absolute path"),
        (_member("d/fifo", tarfile.FIFOTYPE), "special file"),
    ],
)
def test_unsafe_tar_entries_are_refused(tmp_path, member, match):
    archive = tmp_path / "a.tar"
    _tar_with(archive, [_member("d/a.txt"), member], {"d/a.txt": b"hello", "d/../../x": b"x",
                                                      "/abs": b"x"})
    target = tmp_path / "out"
    with pytest.raises(DownloadError, match=match):
        dl.extract_archive(archive, target, "folder")
    assert not (target / "folder").exists() and _leftovers(target) == []


def test_tar_with_internal_link_is_fine(tmp_path):
    archive = tmp_path / "a.tar"
    _tar_with(archive, [_member("d/a.txt"), _member("d/sub/l", tarfile.SYMTYPE, "../a.txt")],
              {"d/a.txt": b"hello"})
    out = dl.extract_archive(archive, tmp_path / "out", "folder")
    assert (out / "a.txt").read_bytes() == b"hello"


def test_interrupted_extraction_leaves_nothing_that_looks_complete(
    tmp_path, monkeypatch, modelnet_zip
):
    archive = tmp_path / "m.zip"
    archive.write_bytes(modelnet_zip)
    target = tmp_path / "data"
    calls = []

    def dying_copy(src, dst, length=0):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        shutil.copyfileobj.__wrapped__(src, dst, length) if hasattr(
            shutil.copyfileobj, "__wrapped__") else dst.write(src.read())

    monkeypatch.setattr(shutil, "copyfileobj", dying_copy)
    with pytest.raises(KeyboardInterrupt):
        dl.extract_archive(archive, target, MN_HDF5)
    assert _leftovers(target) == []
    monkeypatch.undo()
    dl.extract_archive(archive, target, MN_HDF5)
    assert len(ModelNet40(target, "test")) == 5


def test_files_at_top_level_and_existing_target(tmp_path):
    archive = tmp_path / "flat.zip"
    archive.write_bytes(_zip_with({"a.txt": b"1", "b.txt": b"2"}))
    out = dl.extract_archive(archive, tmp_path / "x", "folder")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "b.txt"]
    with pytest.raises(DownloadError, match="already exists"):
        dl.extract_archive(archive, tmp_path / "x", "folder")
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(DownloadError, match="bad.zip"):
        dl.extract_archive(bad, tmp_path / "y", "folder")


# ----------------------------------------------------------------- CLI
@pytest.mark.e2e
def test_cli_download(tmp_path, monkeypatch, modelnet_zip, capsys):
    monkeypatch.setattr(dl, "open_url", FakeNet({URLS[0]: modelnet_zip}))
    assert data_main(["download", "modelnet40", "--root", str(tmp_path), "--no-progress"]) == 0
    assert "ready at" in capsys.readouterr().out
    monkeypatch.setattr(dl, "open_url", FakeNet({}))
    rc = data_main(["download", "shapenetpart", "--root", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "shapenetcore_partanno_segmentation_benchmark_v0_normal.zip" in err
    assert data_main(["download", "nonsense", "--root", str(tmp_path)]) == 1
    assert "unknown archive" in capsys.readouterr().err


# ------------------------------------------------------------------------- data items
@pytest.mark.e2e
def test_cli_never_deletes_an_archive_placed_by_hand(tmp_path, monkeypatch, modelnet_zip):
    def no_network(*a, **k):
        raise AssertionError("network used")

    monkeypatch.setattr(dl, "open_url", no_network)
    placed = tmp_path / "modelnet40_ply_hdf5_2048.zip"
    placed.write_bytes(modelnet_zip)
    assert data_main(["download", "modelnet40", "--root", str(tmp_path), "--no-progress"]) == 0
    assert (tmp_path / MN_HDF5 / "shape_names.txt").is_file()
    assert placed.read_bytes() == modelnet_zip  # no --keep-archive, still there


def test_downloaded_archive_is_removed_unless_kept(tmp_path, monkeypatch, modelnet_zip):
    monkeypatch.setattr(dl, "open_url", FakeNet({URLS[0]: modelnet_zip}))
    dl.download_archive("modelnet40", tmp_path / "a", progress=False)
    assert not (tmp_path / "a" / "modelnet40_ply_hdf5_2048.zip").exists()
    dl.download_archive("modelnet40", tmp_path / "b", progress=False, keep_archive=True)
    assert (tmp_path / "b" / "modelnet40_ply_hdf5_2048.zip").read_bytes() == modelnet_zip


def test_published_checksums_are_recorded_where_known():
    mn = dl.ARCHIVES["modelnet40"]
    assert mn.size_bytes == 435_212_151
    # the digest tensorflow_graphics publishes for the archive, as hashlib writes it
    assert mn.sha256 == "07670e237db72ece0f723b9abb571534c9ad655a6456b389646587dc72bb8bae"
    assert "tensorflow_graphics" in mn.checksum_source
    for info in dl.ARCHIVES.values():  # a checksum always comes with its source
        assert (info.sha256 is None) == (info.checksum_source == "")


def test_sha256_file_is_the_digest_of_the_whole_file(tmp_path):
    path = tmp_path / "blob.bin"
    blob = bytes(range(256)) * 10_000  # three read chunks
    path.write_bytes(blob)
    assert dl.sha256_file(path) == hashlib.sha256(blob).hexdigest()


def test_real_checksum_is_verified_after_download(tmp_path, monkeypatch, tmp_path_factory):
    # the recorded size/sha256 of the real archive refuse anything else from any mirror
    src = tmp_path_factory.mktemp("src")
    write_modelnet_hdf5(src)
    fake = _zip_folder(src / MN_HDF5, MN_HDF5)
    monkeypatch.setattr(dl, "open_url", FakeNet({u: fake for u in URLS}))
    with pytest.raises(DownloadError, match="size mismatch") as info:
        dl.download_archive("modelnet40", tmp_path, progress=False)
    assert "435212151" in str(info.value) and _leftovers(tmp_path) == []
    # a hand-placed copy of the wrong size is refused too, and kept
    placed = tmp_path / "modelnet40_ply_hdf5_2048.zip"
    placed.write_bytes(fake)
    with pytest.raises(DownloadError, match="size mismatch.*left in place"):
        dl.download_archive("modelnet40", tmp_path, progress=False)
    assert placed.read_bytes() == fake


def test_archive_without_checksum_says_so(tmp_path, monkeypatch, capsys, tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    write_shapenet_hdf5(src, folder_name="hdf5_data")
    payload = _zip_folder(src / "hdf5_data", "hdf5_data")
    info = dl.ARCHIVES["shapenetpart_hdf5"]
    assert info.sha256 is None
    monkeypatch.setattr(dl, "open_url", FakeNet({info.urls[0]: payload}))
    dl.download_archive("shapenetpart_hdf5", tmp_path / "a", progress=False)
    assert "shapenet_part_seg_hdf5_data.zip has no published checksum" in capsys.readouterr().err
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / info.filename).write_bytes(payload)
    dl.download_archive("shapenetpart_hdf5", tmp_path / "b", progress=False)
    assert "unverified" in capsys.readouterr().err
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / info.filename).write_bytes(payload)
    dl.download_archive("shapenetpart_hdf5", tmp_path / "c", progress=False, quiet=True)
    assert capsys.readouterr().err == ""


CHAIN = [
    _member("ds", tarfile.DIRTYPE),
    _member("ds/x", tarfile.SYMTYPE, "."),
    _member("ds/x/x/x/y", tarfile.SYMTYPE, "../../.."),
    _member("ds/x/x/x/y/escaped.txt"),
]


def test_tar_link_chain_is_refused_by_pointeas_own_check(tmp_path):
    from pointea.datasets.extract import check_tar_members

    with pytest.raises(DownloadError, match="leaves the target"):
        check_tar_members(CHAIN, tmp_path / "a.tar")
    # the link alone, without the file through it, is refused as well
    with pytest.raises(DownloadError, match=r"ds/x/x/x/y.*leaves the target"):
        check_tar_members(CHAIN[:3], tmp_path / "a.tar")


def test_tar_link_chain_refused_without_the_stdlib_filter(tmp_path, monkeypatch):
    # Python 3.10.0-3.10.11 / 3.11.0-3.11.3 have no filter="data": pointea alone must hold
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    archive = tmp_path / "a.tar"
    _tar_with(archive, list(CHAIN), {"ds/x/x/x/y/escaped.txt": b"pwned"})
    target = tmp_path / "deep" / "er" / "out"
    with pytest.raises(DownloadError, match="leaves the target"):
        dl.extract_archive(archive, target, "folder")
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not (target / "folder").exists() and _leftovers(target) == []


@pytest.mark.parametrize(
    "members, match",
    [
        # a link through a link that points back up: x -> . makes y = x/.. the parent
        ([_member("x", tarfile.SYMTYPE, "."), _member("y", tarfile.SYMTYPE, "x/..")],
         "leaves the target"),
        # a loop
        ([_member("a", tarfile.SYMTYPE, "b"), _member("b", tarfile.SYMTYPE, "a"),
          _member("a/f")], "loop"),
        # fine when made, redirected later: b = a/../.. is root while a -> s/t ...
        ([_member("a", tarfile.SYMTYPE, "s/t"), _member("b", tarfile.SYMTYPE, "a/../.."),
          _member("a", tarfile.SYMTYPE, ".")], "leaves the target"),
        # a regular file written through a link that points outside
        ([_member("d", tarfile.DIRTYPE), _member("d/l", tarfile.SYMTYPE, "../x"),
          _member("l2", tarfile.SYMTYPE, "d/l/../.."), _member("l2/f")], "leaves the target"),
        # hard links must name a file extracted before them
        ([_member("d/h", tarfile.LNKTYPE, "d/missing")], "hard link"),
        ([_member("x", tarfile.SYMTYPE, "."), _member("h", tarfile.LNKTYPE, "x/x")],
         "hard link"),
    ],
)
def test_tar_link_tricks_are_refused(tmp_path, members, match):
    from pointea.datasets.extract import check_tar_members

    with pytest.raises(DownloadError, match=match):
        check_tar_members(members, tmp_path / "a.tar")


def test_tar_internal_links_still_extract(tmp_path):
    from pointea.datasets.extract import check_tar_members

    ok = [_member("d/a.txt"), _member("d/x", tarfile.SYMTYPE, "."),
          _member("d/x/x/b", tarfile.SYMTYPE, "a.txt"), _member("d/h", tarfile.LNKTYPE, "d/a.txt")]
    check_tar_members(ok, tmp_path / "a.tar")
    archive = tmp_path / "a.tar"
    _tar_with(archive, ok, {"d/a.txt": b"hello"})
    out = dl.extract_archive(archive, tmp_path / "out", "folder")
    assert (out / "b").read_bytes() == b"hello" and (out / "h").read_bytes() == b"hello"
