"""Safe unpacking of tar, tgz and zip archives: members checked, extracted beside the destination, counted, moved in."""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Mapping

from hmfs.download import UnsafeArchiveError
from hmfs.download.verify import check_counts, check_free_space, hash_file, read_marker, write_marker

LOG = logging.getLogger(__name__)
ARCHIVE_KINDS = ("tar", "tgz", "zip")
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")


def unpack_marker(archive: Path, dest: Path) -> Path:
    """The marker, in `dest`, recording that `archive` was unpacked there."""
    return Path(dest) / f".{Path(archive).name}.unpacked.json"


def check_member_name(name: str, archive: Path) -> None:
    """Refuse a member name that is empty, absolute (`/x`, `C:x`) or climbs out with `..`."""
    parts = re.split(r"[/\\]", name)
    if not name.strip("/\\") or "\x00" in name:
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an empty or invalid name; refusing to unpack")
    if name.startswith(("/", "\\")) or _DRIVE_LETTER.match(name):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; refusing to unpack")
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} contains '..' and would be written outside the unpack "
                                 "folder; refusing to unpack")


def _tar_members(handle: tarfile.TarFile, archive: Path) -> tuple[list[tarfile.TarInfo], int]:
    members, total = handle.getmembers(), 0
    for member in members:
        check_member_name(member.name, archive)
        if member.issym() or member.islnk():
            kind = "symbolic link" if member.issym() else "hard link"
            raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a {kind} (to {member.linkname!r}); "
                                     "refusing to unpack")
        if member.ischr() or member.isblk() or member.isfifo():
            raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a device or fifo; refusing to unpack")
        if not (member.isfile() or member.isdir()):
            raise UnsafeArchiveError(f"{archive}: member {member.name!r} is not a plain file or folder (tar type "
                                     f"{member.type!r}); refusing to unpack")
        total += member.size
    return members, total


def _zip_members(handle: zipfile.ZipFile, archive: Path) -> int:
    total = 0
    for info in handle.infolist():
        check_member_name(info.filename, archive)
        mode = info.external_attr >> 16  # the Unix mode, where the archiver recorded one
        if stat.S_ISLNK(mode):
            raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a symbolic link; refusing to unpack")
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a device, fifo or socket; refusing "
                                     "to unpack")
        total += info.file_size
    return total


def _top_level(names: Iterable[str]) -> set[str]:
    return {PurePosixPath(name).parts[0] for name in names if PurePosixPath(name).parts}


def _extract(archive: Path, kind: str, into: Path, check_top_level: Callable[[set[str]], None]) -> None:
    """Check every member and the places its top-level entries will take (`check_top_level`), then
    extract all members into the empty folder `into`."""
    if kind == "zip":
        with zipfile.ZipFile(archive) as handle:
            needed = _zip_members(handle, archive)
            check_top_level(_top_level(handle.namelist()))
            check_free_space(into, needed, f"unpacking {archive.name}")
            handle.extractall(into)
        return
    with tarfile.open(archive, "r:gz" if kind == "tgz" else "r:*") as handle:
        members, needed = _tar_members(handle, archive)
        check_top_level(_top_level(member.name for member in members))
        check_free_space(into, needed, f"unpacking {archive.name}")
        # filter="data" (Python >= 3.11.4 / 3.10.12) is a second guard behind the checks above.
        options: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        handle.extractall(into, members=members, **options)


def _marker_matches(marker: dict[str, Any] | None, archive: Path, dest: Path) -> bool:
    if marker is None:
        return False
    info = archive.stat()
    entries = marker.get("entries")
    return (marker.get("archive") == archive.name and marker.get("size") == info.st_size
            and marker.get("mtime_ns") == info.st_mtime_ns and isinstance(entries, list) and bool(entries)
            and all((dest / entry).exists() for entry in entries))


def _check_places_free(dest: Path, entries: Iterable[str], archive: Path) -> None:
    taken = sorted(str(dest / entry) for entry in entries if os.path.lexists(dest / entry))
    if taken:
        raise ValueError(f"{', '.join(taken)} already exist(s), not unpacked there from {archive} by hmfs (no "
                         "matching marker); delete or move them to unpack again")


def unpack(archive: Path, kind: str, dest: Path, expected_counts: Mapping[str, int], *,
           rename: Mapping[str, str] | None = None, checksum: str | None = None,
           log: logging.Logger = LOG) -> Path:
    """Unpack `archive` (`kind` tar, tgz or zip) so that its top-level entries land in `dest`.

    Every member is checked first: an absolute path, `..`, a link, a device or a fifo stops the
    unpack with the member named, and so does a top-level entry that `dest` already holds. The
    archive is extracted into a temporary folder beside `dest`; top-level entries are renamed by
    `rename` ({name in the archive: name in dest}); the files matching each glob pattern of
    `expected_counts` (relative to `dest`) are counted; only then are the entries renamed into
    `dest`. A marker in `dest` records the archive's size, mtime and `checksum` (its sha256 when
    not given), so a second call with the same archive does nothing.
    """
    archive, dest = Path(archive), Path(dest)
    if kind not in ARCHIVE_KINDS:
        raise ValueError(f"archive kind {kind!r} cannot be unpacked; accepted: {', '.join(ARCHIVE_KINDS)}")
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist")
    expected, rename = dict(expected_counts), dict(rename or {})
    marker_path = unpack_marker(archive, dest)
    marker = read_marker(marker_path)
    if marker is not None and _marker_matches(marker, archive, dest):
        if marker.get("expect") != expected:  # the manifest changed: count again, in place
            marker["found"] = check_counts(dest, expected, f"{dest} (unpacked from {archive})")
            marker["expect"] = expected
            write_marker(marker_path, marker, log)
        log.info("%s was already unpacked into %s (%s)", archive, dest, ", ".join(marker["entries"]))
        return dest
    info = archive.stat()
    if checksum is None:
        checksum = f"sha256:{hash_file(archive, 'sha256')}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.unpack-", dir=dest.parent))
    try:
        log.info("unpacking %s into %s", archive, tmp)
        _extract(archive, kind, tmp,
                 lambda tops: _check_places_free(dest, (rename.get(top, top) for top in tops), archive))
        for old, new in rename.items():
            if (tmp / old).exists():
                if (tmp / new).exists():
                    raise UnsafeArchiveError(f"{archive}: cannot rename top-level {old!r} to {new!r}, which the "
                                             "archive also holds")
                (tmp / old).rename(tmp / new)
        found = check_counts(tmp, expected, f"archive {archive}")
        entries = sorted(path.name for path in tmp.iterdir())
        if not entries:
            raise UnsafeArchiveError(f"archive {archive} is empty")
        _check_places_free(dest, entries, archive)  # again: something may have appeared meanwhile
        moved = False
        if not dest.exists():
            try:
                os.rename(tmp, dest)  # one atomic rename of the whole tree
                moved = True
            except OSError:  # another archive unpacked into the same folder meanwhile (COCO's three)
                pass
        if not moved:
            dest.mkdir(parents=True, exist_ok=True)
            for entry in entries:  # one atomic rename per top-level entry
                os.rename(tmp / entry, dest / entry)
        write_marker(marker_path, {"archive": archive.name, "size": info.st_size, "mtime_ns": info.st_mtime_ns,
                                   "checksum": checksum, "entries": entries, "expect": expected, "found": found},
                     log)
        log.info("unpacked %s into %s: %s", archive, dest,
                 ", ".join(f"{pattern} {count:,}" for pattern, count in found.items()))
        return dest
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
