"""Fetching and safely extracting the published dataset archives.

The only function that touches the network is :func:`open_url`; tests replace it
(``monkeypatch.setattr(pointea.datasets.download, "open_url", fake)``) to fake downloads,
truncated transfers and failures.

Guarantees:

* A download goes to ``<name>.zip.part`` and is renamed to ``<name>.zip`` only once it is
  complete and its size (and checksum, where known) matched; a failed checksum deletes
  the file and says so.
* Extraction happens in a hidden temporary folder beside the target and the finished folder
  is renamed into place, so an interrupted extraction never looks like a complete dataset.
* Archive entries with absolute paths, ``..`` components, links that leave the target, or
  special files (devices, FIFOs) are refused before anything is written.
* When every location fails (for example offline), the :class:`~pointea.errors.DownloadError`
  says which archive to fetch by hand, from where, and exactly where to put it.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO

from ..errors import DataError, DownloadError

__all__ = [
    "ArchiveInfo",
    "ARCHIVES",
    "open_url",
    "fetch",
    "extract_archive",
    "download_archive",
    "find_archive",
    "manual_instructions",
    "resolve_archive_key",
]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ArchiveInfo:
    """Where a published archive lives and what it extracts to.

    Args:
        key: pointea's short name (``pointea-data download KEY``).
        folder: the folder name the readers look for under ``root``.
        filename: the archive's published file name.
        urls: known locations, tried in order (the first is the original host).
        marker: a file that exists inside ``folder`` in a complete copy.
        aliases: other folder names the same data is commonly kept under.
        size_bytes: exact archive size, where known.
        sha256: archive checksum, where known (``None``: not published, not checked).
        description: one line for messages and ``--help``.
    """

    key: str
    folder: str
    filename: str
    urls: tuple[str, ...]
    marker: str
    aliases: tuple[str, ...] = ()
    size_bytes: int | None = None
    sha256: str | None = None
    description: str = ""

    @property
    def folder_names(self) -> tuple[str, ...]:
        return (self.folder, *self.aliases)


_STANFORD = "https://shapenet.cs.stanford.edu/media/"

#: The published archives. Checksums are left ``None``: none are published by the hosts,
#: and pointea does not invent them (sizes are checked against Content-Length instead).
ARCHIVES: dict[str, ArchiveInfo] = {
    "modelnet40": ArchiveInfo(
        key="modelnet40",
        folder="modelnet40_ply_hdf5_2048",
        filename="modelnet40_ply_hdf5_2048.zip",
        urls=(
            _STANFORD + "modelnet40_ply_hdf5_2048.zip",
            # Mirror kept by the PointMLP authors (GitHub release asset).
            "https://github.com/ma-xu/pointMLP-pytorch/releases/download/"
            "Modenet40_dataset/modelnet40_ply_hdf5_2048.zip",
        ),
        marker="shape_names.txt",
        description="ModelNet40, 2048 points per shape, HDF5 (PointNet/DGCNN/PCT), ~416 MB",
    ),
    "modelnet40_resampled": ArchiveInfo(
        key="modelnet40_resampled",
        folder="modelnet40_normal_resampled",
        filename="modelnet40_normal_resampled.zip",
        urls=(_STANFORD + "modelnet40_normal_resampled.zip",),
        marker="modelnet40_shape_names.txt",
        description="ModelNet40, 10k points with normals per shape, text (PointNet++), ~1.6 GB",
    ),
    "shapenetpart": ArchiveInfo(
        key="shapenetpart",
        folder="shapenetcore_partanno_segmentation_benchmark_v0_normal",
        filename="shapenetcore_partanno_segmentation_benchmark_v0_normal.zip",
        urls=(_STANFORD + "shapenetcore_partanno_segmentation_benchmark_v0_normal.zip",),
        marker="synsetoffset2category.txt",
        description="ShapeNetPart with normals, text (PointNet++/PCT), ~674 MB",
    ),
    "shapenetpart_hdf5": ArchiveInfo(
        key="shapenetpart_hdf5",
        folder="shapenet_part_seg_hdf5_data",
        aliases=("hdf5_data",),  # the folder name inside the published zip
        filename="shapenet_part_seg_hdf5_data.zip",
        urls=(_STANFORD + "shapenet_part_seg_hdf5_data.zip",),
        marker="ply_data_test0.h5",
        description="ShapeNetPart, 2048 points per shape, HDF5 (PointNet), ~346 MB",
    ),
}


def resolve_archive_key(name: str) -> str:
    """Map a user-facing name (``modelnet40-resampled``, ``shapenetpart_hdf5``) to a key."""
    key = name.strip().lower().replace("-", "_")
    if key not in ARCHIVES:
        raise DataError(f"unknown archive {name!r}; known: {', '.join(sorted(ARCHIVES))}")
    return key


# --------------------------------------------------------------------------- network layer
def open_url(url: str, timeout: float = 60.0) -> tuple[BinaryIO, int | None]:
    """Open ``url`` for reading: the single network call of pointea (tests replace it).

    Returns:
        ``(stream, content_length)``; the length is ``None`` when the server sends none.
    """
    from .. import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"pointea/{__version__}"})
    response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (https URLs)
    length = response.headers.get("Content-Length")
    return response, int(length) if length and length.strip().isdigit() else None


def fetch(
    url: str,
    dest: str | os.PathLike,
    *,
    size_bytes: int | None = None,
    sha256: str | None = None,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` atomically, checking size and checksum.

    The bytes go to ``dest + ".part"``; only a complete transfer whose size matches the
    server's Content-Length (and ``size_bytes`` / ``sha256`` when given) is renamed to
    ``dest``. Any failure removes the partial file and raises
    :class:`~pointea.errors.DownloadError`.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        stream, total = open_url(url)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: HTTP error {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise DownloadError(f"{url}: cannot connect ({exc.reason})") from exc
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise DownloadError(f"{url}: cannot open ({exc!r})") from exc
    hasher = hashlib.sha256()
    received = 0
    try:
        with (
            contextlib.closing(stream),
            open(part, "wb") as out,
            tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=dest.name,
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            while True:
                chunk = stream.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                hasher.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    except BaseException as exc:
        with contextlib.suppress(OSError):
            part.unlink()
        if isinstance(exc, (OSError, http.client.HTTPException)):
            raise DownloadError(f"{url}: transfer failed after {received} bytes: {exc!r}") from exc
        raise
    problem = None
    if total is not None and received != total:
        problem = f"transfer truncated: received {received} of {total} bytes"
    elif size_bytes is not None and received != size_bytes:
        problem = f"size mismatch: received {received} bytes, expected {size_bytes}"
    elif sha256 is not None and hasher.hexdigest() != sha256.lower():
        problem = (
            f"checksum mismatch: sha256 {hasher.hexdigest()}, expected {sha256.lower()}; "
            f"the downloaded file was deleted"
        )
    if problem:
        with contextlib.suppress(OSError):
            part.unlink()
        raise DownloadError(f"{url}: {problem}")
    os.replace(part, dest)
    return dest


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- extraction
def _check_member_name(name: str, archive: Path) -> PurePosixPath:
    if not name or "\x00" in name:
        raise DownloadError(f"{archive}: refused entry with an empty or invalid name {name!r}")
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive or PureWindowsPath(name).root:
        raise DownloadError(f"{archive}: refused entry with an absolute path: {name!r}")
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        raise DownloadError(f"{archive}: refused entry leaving the target folder ('..'): {name!r}")
    return PurePosixPath(*[p for p in parts if p not in ("", ".")]) if parts else PurePosixPath()


def _link_stays_inside(member: PurePosixPath, target: str) -> bool:
    if target.startswith(("/", "\\")) or PureWindowsPath(target).drive:
        return False
    depth = len(member.parts) - 1  # folders above the link inside the archive
    for part in PurePosixPath(target.replace("\\", "/")).parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return False
        elif part not in ("", "."):
            depth += 1
    return True


def _extract_zip(archive: Path, into: Path) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DownloadError(
            f"{archive}: not a readable zip archive (corrupt or truncated?): {exc}"
        ) from exc
    with zf:
        infos = zf.infolist()
        for info in infos:
            _check_member_name(info.filename, archive)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise DownloadError(
                    f"{archive}: refused symbolic link entry {info.filename!r} "
                    f"(links are not part of the published archives)"
                )
        for info in infos:
            rel = _check_member_name(info.filename, archive)
            if not rel.parts:
                continue
            out = into.joinpath(*rel.parts)
            if info.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
            except (zipfile.BadZipFile, EOFError, zlib_error()) as exc:
                raise DownloadError(
                    f"{archive}: entry {info.filename!r} is corrupt: {exc}"
                ) from exc


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


def _extract_tar(archive: Path, into: Path) -> None:
    try:
        tf = tarfile.open(archive)  # noqa: SIM115 (closed by the with below)
    except (tarfile.TarError, OSError) as exc:
        raise DownloadError(f"{archive}: not a readable tar archive: {exc}") from exc
    with tf:
        members = tf.getmembers()
        for m in members:
            rel = _check_member_name(m.name, archive)
            if m.issym() or m.islnk():
                if not _link_stays_inside(rel, m.linkname) or (
                    m.islnk() and ".." in PurePosixPath(m.linkname).parts
                ):
                    raise DownloadError(
                        f"{archive}: refused link {m.name!r} -> {m.linkname!r}: "
                        f"it leaves the target folder"
                    )
            elif not (m.isfile() or m.isdir()):
                raise DownloadError(f"{archive}: refused special file entry {m.name!r}")
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        try:
            tf.extractall(into, members=members, **kwargs)  # noqa: S202 (checked above)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DownloadError(f"{archive}: extraction failed: {exc}") from exc


def extract_archive(archive: str | os.PathLike, dest_dir: str | os.PathLike, folder: str) -> Path:
    """Safely extract ``archive`` (zip or tar) so its content ends up in ``dest_dir/folder``.

    The archive's single top-level folder (whatever its name) becomes ``folder``; an
    archive with files at its top level is placed in ``folder`` as is. Extraction runs in a
    temporary folder that is renamed into place at the end, so an interrupted run leaves no
    folder that looks complete.

    Raises:
        DownloadError: unsafe entries (absolute paths, ``..``, links leaving the target,
            special files), a corrupt archive, or an existing non-empty ``dest_dir/folder``.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    final = dest_dir / folder
    if final.exists():
        raise DownloadError(f"{final}: already exists; remove it to extract {archive} again")
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder}.extract-", dir=dest_dir))
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, tmp)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, tmp)
        else:
            raise DownloadError(f"{archive}: neither a zip nor a tar archive (corrupt download?)")
        entries = [p for p in tmp.iterdir() if p.name not in ("__MACOSX",)]
        if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
            os.replace(entries[0], final)
        else:
            os.replace(tmp, final)  # files at the top level: the temp folder is the dataset
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


# --------------------------------------------------------------------------- high level
def find_archive(info: ArchiveInfo, root: str | os.PathLike) -> Path | None:
    """The extracted folder of ``info`` under ``root`` (or ``root`` itself), if present."""
    root = Path(root).expanduser()
    if root.name in info.folder_names and root.is_dir():
        return root
    for name in info.folder_names:
        if (root / name).is_dir():
            return root / name
    return None


def manual_instructions(info: ArchiveInfo, root: str | os.PathLike) -> str:
    """A paragraph telling the user exactly which file to fetch and where to put it."""
    root = Path(root).expanduser()
    urls = "\n".join(f"    {u}" for u in info.urls)
    return (
        f"Fetch {info.filename} ({info.description}) by hand from one of:\n{urls}\n"
        f"then either extract it so that {root / info.folder / info.marker} exists, or put "
        f"the archive itself at {root / info.filename} and run "
        f"`pointea-data download {info.key} --root {root}` (or pass download=True), which "
        f"extracts it safely."
    )


def download_archive(
    key: str | ArchiveInfo,
    root: str | os.PathLike,
    *,
    progress: bool = True,
    keep_archive: bool = False,
) -> Path:
    """Make sure the archive ``key`` is extracted under ``root``; return its folder.

    Order: an already extracted folder is returned as is; an archive file already at
    ``root/<filename>`` (placed by hand) is checked and extracted; otherwise each known URL
    is tried in turn (original host, then mirrors).

    Raises:
        DownloadError: every location failed (the message lists each failure and says how
            to fetch the archive by hand), a checksum mismatched, or the archive is unsafe.
    """
    info = key if isinstance(key, ArchiveInfo) else ARCHIVES[resolve_archive_key(key)]
    root = Path(root).expanduser()
    found = find_archive(info, root)
    if found is not None:
        return found
    root.mkdir(parents=True, exist_ok=True)
    archive = root / info.filename
    placed_by_hand = archive.exists()
    if placed_by_hand and info.sha256 is not None and _sha256_file(archive) != info.sha256.lower():
        archive.unlink()
        raise DownloadError(
            f"{archive}: checksum mismatch (expected sha256 {info.sha256}); the file was "
            f"deleted.\n{manual_instructions(info, root)}"
        )
    downloaded = not archive.exists()
    if downloaded:
        failures = []
        for url in info.urls:
            try:
                fetch(
                    url, archive, size_bytes=info.size_bytes, sha256=info.sha256, progress=progress
                )
            except DownloadError as exc:
                failures.append(str(exc))
                continue
            if zipfile.is_zipfile(archive) or tarfile.is_tarfile(archive):
                break
            archive.unlink()
            failures.append(
                f"{url}: the server sent something that is not a zip or tar "
                f"archive (an error page?); it was deleted"
            )
        else:
            tried = "\n".join(f"  - {f}" for f in failures)
            raise DownloadError(
                f"could not download {info.filename}; tried:\n{tried}\n"
                f"{manual_instructions(info, root)}"
            )
    try:
        folder = extract_archive(archive, root, info.folder)
    except DownloadError as exc:
        if downloaded:
            with contextlib.suppress(OSError):
                archive.unlink()
            raise DownloadError(f"{exc}\nThe downloaded archive was deleted.") from exc
        raise DownloadError(f"{exc}\nRemove or replace {archive} and try again.") from exc
    if not keep_archive:
        with contextlib.suppress(OSError):
            archive.unlink()
    return folder
