"""Safe extraction of the dataset archives (zip and tar).

Every entry is checked before anything is written:

* names: no empty names, NUL bytes, absolute paths (POSIX or Windows) or ``..``;
* zip: symbolic links are refused (the published archives have none);
* tar: only regular files, folders and links; links are followed **as extraction would
  follow them** (:class:`TarLinkCheck`): each entry's path is resolved through the links
  extracted before it, each link's target through the links present at that point, and
  at the end every link again through all of them, so a chain such as ``ds/x -> .``
  plus ``ds/x/x/x/y -> ../../..`` is refused even where the standard library's
  ``filter="data"`` is missing (Python 3.10.0-3.10.11, 3.11.0-3.11.3);
* the finished folder is built in a hidden temporary folder beside the target and
  renamed into place (:func:`pointea.files.staging_folder`), so an interrupted
  extraction never looks like a complete dataset.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath, PureWindowsPath

from ..errors import DownloadError
from ..files import publish_folder, staging_folder

__all__ = ["check_member_name", "TarLinkCheck", "check_tar_members", "extract_archive"]

_CHUNK = 1 << 20
_MAX_LINK_HOPS = 40  # as the kernel's ELOOP limit


def check_member_name(name: str, archive: str | os.PathLike) -> PurePosixPath:
    """The entry's path relative to the target folder, or :class:`DownloadError`.

    Refuses empty names, NUL bytes, absolute paths and ``..`` components.
    """
    if not name or "\x00" in name:
        raise DownloadError(f"{archive}: refused entry with an empty or invalid name {name!r}")
    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive or PureWindowsPath(name).root:
        raise DownloadError(f"{archive}: refused entry with an absolute path: {name!r}")
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        raise DownloadError(f"{archive}: refused entry leaving the target folder ('..'): {name!r}")
    return PurePosixPath(*[p for p in parts if p not in ("", ".")]) if parts else PurePosixPath()


class TarLinkCheck:
    """Follows a tar archive's entries in order, resolving paths as extraction would.

    Call :meth:`add` for each member in archive order, then :meth:`finish`. Paths are
    tuples of components relative to the target folder; a resolution that climbs above
    the target, starts at ``/``, or loops raises :class:`DownloadError`.

    Args:
        archive: named in the messages.
    """

    def __init__(self, archive: str | os.PathLike) -> None:
        self.archive = archive
        self.links: dict[tuple[str, ...], str] = {}  # resolved location -> raw target
        self.files: set[tuple[str, ...]] = set()  # resolved locations of regular files

    def resolve(
        self, parts: tuple[str, ...] | list[str], *, follow_last: bool = True, what: str = ""
    ) -> tuple[str, ...]:
        """Where ``parts`` lands once the links known so far are followed."""
        out: list[str] = []
        todo = list(parts)
        hops = 0
        while todo:
            part = todo.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not out:
                    raise self._refuse(what, "it leaves the target folder")
                out.pop()
                continue
            here = (*out, part)
            target = self.links.get(here)
            if target is None or (not todo and not follow_last):
                out.append(part)
                continue
            hops += 1
            if hops > _MAX_LINK_HOPS:
                raise self._refuse(what, "too many levels of links (a loop?)")
            if _is_absolute(target):
                raise self._refuse(what, "it leaves the target folder (absolute link)")
            todo = [*_parts(target), *todo]
        return tuple(out)

    def add(self, member: tarfile.TarInfo) -> None:
        """Check one member (in archive order) and record what it creates."""
        rel = check_member_name(member.name, self.archive).parts
        what = f"{member.name!r}" + (f" -> {member.linkname!r}" if member.linkname else "")
        if not rel:
            return
        if member.issym():
            if not member.linkname or _is_absolute(member.linkname):
                raise self._refuse(what, "it leaves the target folder")
            parent = self.resolve(rel[:-1], what=what)
            where = (*parent, rel[-1])
            # extraction replaces whatever is at ``where``; the target is read from there
            self.links.pop(where, None)
            self.files.discard(where)
            self.resolve((*parent, *_parts(member.linkname)), what=what)
            self.links[where] = member.linkname
        elif member.islnk():
            # tarfile links ``root/linkname`` (relative to the target, not to the entry)
            target = member.linkname.replace("\\", "/")
            if not target or _is_absolute(target) or ".." in PurePosixPath(target).parts:
                raise self._refuse(what, "it leaves the target folder")
            source = check_member_name(target, self.archive).parts
            if self.resolve(source, follow_last=False, what=what) not in self.files:
                raise self._refuse(what, "a hard link must name a regular file extracted before it")
            self.files.add(self.resolve(rel, what=what))
        elif member.isfile():
            self.files.add(self.resolve(rel, what=what))
        elif member.isdir():
            self.resolve(rel, what=what)
        else:
            raise DownloadError(f"{self.archive}: refused special file entry {member.name!r}")

    def finish(self) -> None:
        """Re-check every link against the final set of links (a later link may have
        changed what an earlier one points to)."""
        for where, target in list(self.links.items()):
            self.resolve((*where[:-1], *_parts(target)), what=f"{'/'.join(where)!r} -> {target!r}")

    def _refuse(self, what: str, why: str) -> DownloadError:
        return DownloadError(f"{self.archive}: refused link or entry {what}: {why}")


def _parts(target: str) -> tuple[str, ...]:
    return PurePosixPath(target.replace("\\", "/")).parts


def _is_absolute(target: str) -> bool:
    return target.startswith(("/", "\\")) or bool(PureWindowsPath(target).drive)


def check_tar_members(members: list[tarfile.TarInfo], archive: str | os.PathLike) -> None:
    """Refuse the archive unless every member stays inside the target once extracted.

    This is pointea's own check; it does not rely on ``tarfile``'s extraction filters.
    """
    check = TarLinkCheck(archive)
    for m in members:
        check.add(m)
    check.finish()


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
            check_member_name(info.filename, archive)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise DownloadError(
                    f"{archive}: refused symbolic link entry {info.filename!r} "
                    f"(links are not part of the published archives)"
                )
        for info in infos:
            rel = check_member_name(info.filename, archive)
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
            except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
                raise DownloadError(
                    f"{archive}: entry {info.filename!r} is corrupt: {exc}"
                ) from exc


def _extract_tar(archive: Path, into: Path) -> None:
    try:
        tf = tarfile.open(archive)  # noqa: SIM115 (closed by the with below)
    except (tarfile.TarError, OSError) as exc:
        raise DownloadError(f"{archive}: not a readable tar archive: {exc}") from exc
    with tf:
        try:
            members = tf.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DownloadError(f"{archive}: not a readable tar archive: {exc}") from exc
        check_tar_members(members, archive)
        # the standard library's own filter, where it exists, as a second line of defence
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
            special files), a corrupt archive, or an existing ``dest_dir/folder``.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    final = dest_dir / folder
    if final.exists() or final.is_symlink():
        raise DownloadError(f"{final}: already exists; remove it to extract {archive} again")
    with staging_folder(final) as tmp:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, tmp)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, tmp)
        else:
            raise DownloadError(f"{archive}: neither a zip nor a tar archive (corrupt download?)")
        entries = [p for p in tmp.iterdir() if p.name not in ("__MACOSX",)]
        single = len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink()
        try:
            # files at the top level: the temporary folder itself is the dataset
            publish_folder(entries[0] if single else tmp, final)
        except OSError as exc:
            raise DownloadError(f"{final}: could not move the extracted folder in: {exc}") from exc
    return final
