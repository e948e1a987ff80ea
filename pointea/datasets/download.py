"""Fetching and safely extracting the published dataset archives.

The only function that touches the network is :func:`open_url`; tests replace it
(``monkeypatch.setattr(pointea.datasets.download, "open_url", fake)``) to fake downloads,
truncated transfers and failures.

Guarantees:

* A download goes to a hidden temporary file beside ``<name>.zip``
  (:func:`pointea.files.atomic_write`) that becomes ``<name>.zip`` only once it is
  complete and its size and sha256 matched the published ones (where known; a line on
  stderr says when an archive has none); a mismatch deletes the download and says so.
* An archive the user placed at ``<root>/<name>.zip`` is never deleted or modified: it is
  checked against the published size and sha256 (where known) and extracted; only an
  archive pointea downloaded itself is removed after extraction (unless
  ``keep_archive``).
* Extraction (:mod:`pointea.datasets.extract`) checks every entry first and builds the
  folder beside the target before renaming it into place.
* When every location fails (for example offline), the :class:`~pointea.errors.DownloadError`
  says which archive to fetch by hand, from where, and exactly where to put it.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from ..errors import DataError, DownloadError
from ..files import atomic_write
from .extract import extract_archive

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
    "sha256_file",
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
        size_bytes: exact archive size, where published (``None``: unknown).
        sha256: archive checksum, where published (``None``: unknown; only the
            completeness of the transfer is checked, and a line says so).
        checksum_source: where ``size_bytes`` / ``sha256`` were read.
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
    checksum_source: str = ""
    description: str = ""

    @property
    def folder_names(self) -> tuple[str, ...]:
        return (self.folder, *self.aliases)


_STANFORD = "https://shapenet.cs.stanford.edu/media/"

_TFG_CHECKSUMS = (
    "tensorflow/graphics: tensorflow_graphics/datasets/modelnet40/checksums.tsv "
    "(TFDS registered checksum of the Stanford URL)"
)

#: The published archives. Sizes and checksums are recorded only where a public loader
#: pins them (see ``checksum_source``); the others stay ``None`` (never invented): their
#: transfers are checked against Content-Length only, and a line says so.
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
        size_bytes=435_212_151,
        sha256="07670e237db72ece0f723b9abb571534c9ad655a6456b389646587dc72bb8bae",
        checksum_source=_TFG_CHECKSUMS,
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

    The bytes go to a temporary file beside ``dest``; only a complete transfer whose size
    matches the server's Content-Length (and ``size_bytes`` / ``sha256`` when given)
    becomes ``dest``. Any failure removes the partial file and raises
    :class:`~pointea.errors.DownloadError`.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    try:
        stream, total = open_url(url)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: HTTP error {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise DownloadError(f"{url}: cannot connect ({exc.reason})") from exc
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise DownloadError(f"{url}: cannot open ({exc!r})") from exc

    def transfer(out: IO[bytes]) -> None:
        hasher = hashlib.sha256()
        received = 0
        try:
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=dest.name,
                disable=not progress,
                leave=False,
            ) as bar:
                while True:
                    chunk = stream.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    hasher.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as exc:
            raise DownloadError(f"{url}: transfer failed after {received} bytes: {exc!r}") from exc
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
            raise DownloadError(f"{url}: {problem}")

    try:
        with contextlib.closing(stream):
            atomic_write(dest, transfer)
    except OSError as exc:
        raise DownloadError(f"{url}: {exc}") from exc
    return dest


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


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


def _say(msg: str, quiet: bool) -> None:
    if not quiet:
        print(f"pointea: {msg}", file=sys.stderr, flush=True)


def _check_placed_archive(info: ArchiveInfo, archive: Path, root: Path, quiet: bool) -> None:
    """Verify an archive the user put in place; never delete or change it."""
    keep = (
        f"The file was left in place: replace it with a good copy (or remove it to let "
        f"pointea download one).\n{manual_instructions(info, root)}"
    )
    if info.size_bytes is not None and archive.stat().st_size != info.size_bytes:
        raise DownloadError(
            f"{archive}: size mismatch: {archive.stat().st_size} bytes, the published "
            f"archive has {info.size_bytes}. {keep}"
        )
    if info.sha256 is not None:
        digest = sha256_file(archive)
        if digest != info.sha256.lower():
            raise DownloadError(
                f"{archive}: checksum mismatch: sha256 {digest}, expected "
                f"{info.sha256.lower()}. {keep}"
            )
    else:
        _say(f"{info.filename} has no published checksum; using {archive} unverified", quiet)


def download_archive(
    key: str | ArchiveInfo,
    root: str | os.PathLike,
    *,
    progress: bool = True,
    keep_archive: bool = False,
    quiet: bool = False,
) -> Path:
    """Make sure the archive ``key`` is extracted under ``root``; return its folder.

    Order: an already extracted folder is returned as is; an archive file already at
    ``root/<filename>`` (placed by hand) is checked and extracted, and always kept;
    otherwise each known URL is tried in turn (original host, then mirrors), the download
    is verified against the published size and sha256 where known, extracted, and
    deleted afterwards unless ``keep_archive``.

    Args:
        key: an :data:`ARCHIVES` key (or alias) or an :class:`ArchiveInfo`.
        root: the data folder.
        progress: show a progress bar while downloading.
        keep_archive: keep a downloaded archive after extraction.
        quiet: do not print the one-line notes (e.g. "no published checksum") on stderr.

    Raises:
        DownloadError: every location failed (the message lists each failure and says how
            to fetch the archive by hand), a size or checksum mismatched, or the archive
            is unsafe.
    """
    info = key if isinstance(key, ArchiveInfo) else ARCHIVES[resolve_archive_key(key)]
    root = Path(root).expanduser()
    found = find_archive(info, root)
    if found is not None:
        return found
    root.mkdir(parents=True, exist_ok=True)
    archive = root / info.filename
    downloaded = not (archive.exists() or archive.is_symlink())
    if not downloaded:
        _check_placed_archive(info, archive, root, quiet)
    else:
        if info.sha256 is None:
            _say(
                f"{info.filename} has no published checksum; only the completeness of the "
                f"transfer (Content-Length) is checked",
                quiet,
            )
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
    if downloaded and not keep_archive:
        with contextlib.suppress(OSError):
            archive.unlink()
    return folder
