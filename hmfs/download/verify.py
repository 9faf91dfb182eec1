"""Checks of local copies (archive size and checksum, folder member counts), remembered in small marker files."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any, Mapping

from hmfs.download import DiskSpaceError, VerificationError
from hmfs.download.manifest import Asset
from hmfs.runtime import atomic_write_json

LOG = logging.getLogger(__name__)
HASH_CHUNK_BYTES = 1 << 20
# What Google Drive (or a proxy, or a login page) sends instead of a file; no tar, zip or .pth
# file starts like this.
_HTML_STARTS = (b"<!doctype html", b"<html")


def hash_file(path: Path, algorithm: str, chunk_bytes: int = HASH_CHUNK_BYTES) -> str:
    """Hex digest of `path` with hashlib's `algorithm` (md5, sha256), read in chunks, never whole."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(block)
    return digest.hexdigest()


def looks_like_html(path: Path) -> bool:
    """Whether the file starts like an HTML page (`<!DOCTYPE html`, `<html`), leading blanks ignored."""
    with open(path, "rb") as handle:
        head = handle.read(1024).lstrip().lower()
    return head.startswith(_HTML_STARTS)


def check_free_space(folder: Path, needed: int, what: str) -> None:
    """Raise DiskSpaceError when the file system of `folder` (or its nearest existing parent) has
    fewer than `needed` free bytes."""
    where = Path(folder).absolute()
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    if free < needed:
        raise DiskSpaceError(f"{what} needs {needed:,} bytes of free space in {where}, which has {free:,}; free "
                             f"{needed - free:,} more bytes or choose a folder on another disk")


def check_file(asset: Asset, path: Path, hexdigest: str | None = None) -> str:
    """Check a complete copy of `asset` (size, not an HTML page, checksum) and return `<algorithm>:<hex>`
    of what was computed (sha256 when the manifest has no checksum). `hexdigest`: the digest already
    computed while the file was written, which spares reading it again."""
    size = path.stat().st_size
    if asset.size is not None and size != asset.size:
        raise VerificationError(f"{path} has {size:,} bytes, but asset {asset.name!r} ({asset.filename}) has "
                                f"{asset.size:,}")
    if looks_like_html(path):
        raise VerificationError(f"{path} is an HTML page, not asset {asset.name!r} ({asset.filename}): the server "
                                "sent an error or confirmation page instead of the file")
    algorithm = asset.checksum.algorithm if asset.checksum is not None else "sha256"
    digest = hexdigest if hexdigest is not None else hash_file(path, algorithm)
    if asset.checksum is not None and not asset.checksum.matches(digest):
        raise VerificationError(f"{path}: checksum mismatch, {algorithm} is {digest} but asset {asset.name!r} "
                                f"must have {asset.checksum}")
    return f"{algorithm}:{digest}"


def archive_marker(path: Path) -> Path:
    """The marker recording a verified copy of `path`, beside it."""
    return path.with_name(f".{path.name}.verified.json")


def _stat_key(path: Path) -> tuple[int, int]:
    stat = path.stat()  # follows a symlink: a linked copy is keyed by the file it points to
    return stat.st_size, stat.st_mtime_ns


def read_marker(path: Path) -> dict[str, Any] | None:
    """The JSON object in a marker file, or None when it is absent or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_marker(path: Path, data: Mapping[str, Any], log: logging.Logger = LOG) -> None:
    """Write a marker atomically; a folder where it cannot be written only costs a check next time."""
    try:
        atomic_write_json(path, dict(data))
    except OSError as error:  # a read-only copy is still usable; it is only verified again next time
        log.warning("could not write the marker %s (%s); the copy will be verified again next time", path, error)


def _expected(asset: Asset) -> dict[str, Any]:
    # A marker only counts for the manifest entry it was checked against.
    return {"asset": asset.name, "expected_size": asset.size,
            "expected_checksum": str(asset.checksum) if asset.checksum else None}


def cached_checksum(asset: Asset, path: Path) -> str | None:
    """The checksum a valid marker recorded for `path`, or None when the marker is absent or stale
    (the file's size or mtime changed, or the manifest entry did)."""
    marker = read_marker(archive_marker(path))
    if marker is None or not path.is_file():
        return None
    size, mtime_ns = _stat_key(path)
    if marker.get("size") != size or marker.get("mtime_ns") != mtime_ns:
        return None
    if any(marker.get(key) != value for key, value in _expected(asset).items()):
        return None
    computed = marker.get("computed_checksum")
    return computed if isinstance(computed, str) else None


def record_verified(asset: Asset, path: Path, computed: str, stat_key: tuple[int, int] | None = None,
                    log: logging.Logger = LOG) -> None:
    """Write the marker saying `path` (with `stat_key` = (size, mtime_ns), default: now) matched `asset`."""
    size, mtime_ns = stat_key if stat_key is not None else _stat_key(path)
    write_marker(archive_marker(path), {**_expected(asset), "file": path.name, "size": size, "mtime_ns": mtime_ns,
                                        "computed_checksum": computed}, log)


def verify_archive(asset: Asset, path: Path, *, log: logging.Logger = LOG) -> str:
    """Check a complete archive or file against `asset` once; while its size and mtime stay the same,
    later calls read the marker instead of hashing again. Returns `<algorithm>:<hex>`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (asset {asset.name!r}, file {asset.filename})")
    cached = cached_checksum(asset, path)
    if cached is not None:
        log.info("%s: %s was verified before (%s); size and mtime unchanged", asset.name, path, cached)
        return cached
    stat_key = _stat_key(path)  # taken before hashing: a file changed meanwhile is verified again next time
    log.info("%s: verifying %s (%s bytes)", asset.name, path, f"{stat_key[0]:,}")
    computed = check_file(asset, path)
    if asset.checksum is None:
        log.warning("%s: no checksum is published (%s); this copy has %s", asset.name, asset.checksum_note, computed)
    record_verified(asset, path, computed, stat_key, log)
    return computed


def count_members(folder: Path, expected: Mapping[str, int]) -> dict[str, int]:
    """How many files each glob pattern matches under `folder`; hidden files (a component starting
    with '.', such as macOS's ._name copies) do not count."""
    counts = {}
    for pattern in expected:
        counts[pattern] = sum(1 for path in folder.glob(pattern) if path.is_file()
                              and not any(part.startswith(".") for part in path.relative_to(folder).parts))
    return counts


def check_counts(folder: Path, expected: Mapping[str, int], what: str) -> dict[str, int]:
    """Raise VerificationError listing each pattern whose count under `folder` differs from `expected`."""
    found = count_members(folder, expected)
    wrong = [f"{pattern}: expected {count:,}, found {found[pattern]:,}" for pattern, count in expected.items()
             if found[pattern] != count]
    if wrong:
        entries = sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []
        raise VerificationError(f"{what} does not hold what the manifest expects: {'; '.join(wrong)} (counted in "
                                f"{folder}, whose top-level entries are {entries})")
    return found


def folder_marker(asset: Asset, folder: Path) -> Path:
    """The marker recording that `folder` held the expected members of `asset`."""
    return folder / f".hmfs-{asset.name}.counted.json"


def verify_folder(asset: Asset, folder: Path, *, log: logging.Logger = LOG) -> dict[str, int]:
    """Check the member counts of an unpacked copy of `asset` (`folder` is what the manifest's
    `unpack.into` names, e.g. the folder holding VOCdevkit/) once per set of counted patterns."""
    folder = Path(folder)
    if asset.unpack is None:
        raise ValueError(f"asset {asset.name!r} is a plain file; name the file itself, not the folder {folder}")
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder (asset {asset.name!r})")
    expected = asset.unpack.expected_counts
    marker = read_marker(folder_marker(asset, folder))
    if marker is not None and marker.get("asset") == asset.name and marker.get("expect") == expected:
        log.info("%s: %s was counted before with the same patterns", asset.name, folder)
        return dict(marker.get("found", expected))
    found = check_counts(folder, expected, f"folder {folder} (asset {asset.name!r})")
    write_marker(folder_marker(asset, folder), {"asset": asset.name, "expect": expected, "found": found}, log)
    return found


def verify_local(asset: Asset, path: Path, *, log: logging.Logger = LOG) -> str | dict[str, int]:
    """Verify a copy the user already has: an archive (size, checksum) or an unpacked folder (counts)."""
    path = Path(path)
    if path.is_file():
        return verify_archive(asset, path, log=log)
    if path.is_dir():
        return verify_folder(asset, path, log=log)
    raise FileNotFoundError(f"{path} does not exist; name the downloaded {asset.filename} or the folder it was "
                            "unpacked into")
