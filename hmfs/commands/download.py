"""`python -m hmfs fetch` and `python -m hmfs unpack`: get, verify and unpack one asset of the download manifest."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path, PurePosixPath
from typing import Any

import requests

from hmfs.download import DownloadError, VerificationError
from hmfs.download.http import download
from hmfs.download.manifest import Asset, Manifest, load_manifest, override_urls
from hmfs.download.unpack import unpack, unpack_marker
from hmfs.download.verify import read_marker, record_verified, verify_archive, verify_folder
from hmfs.runtime import atomic_write_json

LOG = logging.getLogger(__name__)


def _manifest(path: Path | None, asset: str, urls: list[str] | None) -> tuple[Manifest, Asset]:
    manifest = load_manifest(path)
    manifest.get(asset)  # an unknown name fails here, listing the known ones
    if urls:
        manifest = override_urls(manifest, {asset: urls})
    return manifest, manifest.get(asset)


def fetch_asset(asset: Asset, out_dir: Path, *, local: Path | None = None, offline: bool = False,
                session: requests.Session | None = None, log: logging.Logger = LOG) -> Path:
    """A verified copy of `asset`: `out_dir/<filename>`, downloaded unless it is there already.

    With `local` (an archive or unpacked folder the user already has) nothing is downloaded: a
    folder is checked by its member counts and returned; an archive is checked by size and
    checksum and linked as `out_dir/<filename>` (a symbolic link, so a 13 GB file is not copied).
    With `offline`, a missing file is an error that says where to put it (nothing is downloaded).
    """
    dest = Path(out_dir) / asset.filename
    if local is None:
        if offline and not dest.exists():
            raise DownloadError(
                f"asset {asset.name!r} ({asset.filename}, {asset.size_text}) is not at {dest.absolute()}, and "
                "downloading is off (--offline; in the workflow, data.download is false). Put a copy there (it is "
                f"verified before use), name your own copy under the workflow's data.local.{asset.name}, or set "
                "data.download: true to let the workflow download it.")
        return download(asset, dest, session=session, log=log)
    local = Path(local)
    if local.is_dir():
        verify_folder(asset, local, log=log)
        return local
    computed = verify_archive(asset, local, log=log)
    if os.path.lexists(dest):
        if dest.resolve() != local.resolve():
            raise ValueError(f"{dest} already exists and is not {local}; delete it to use {local}, or drop --local "
                             "to verify and use the existing file")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.symlink_to(local.resolve())
    record_verified(asset, dest, computed, log=log)
    log.info("%s: %s -> %s", asset.name, dest, local.resolve())
    return dest


def unpack_asset(asset: Asset, archive: Path, raw_dir: Path, *, log: logging.Logger = LOG) -> Path:
    """Verify `archive` as `asset` (once per size and mtime) and unpack it into the raw folder, where
    the manifest's `unpack.into` says."""
    if asset.unpack is None:
        raise ValueError(f"asset {asset.name!r} is a plain {asset.archive!r} file, not an archive; use it as it is")
    try:
        computed = verify_archive(asset, Path(archive), log=log)
    except VerificationError as error:
        raise VerificationError(f"{error}. Replace {archive} with a good copy, or delete it to download it "
                                "again") from None
    return unpack(Path(archive), asset.archive, asset.unpack_dir(raw_dir), asset.unpack.expected_counts,
                  rename=asset.unpack.rename_map, checksum=computed, log=log)


def top_level_entries(asset: Asset) -> list[str]:
    """The top-level entries of an unpacked `asset` that its member counts name (VOCdevkit, train2014, ...)."""
    if asset.unpack is None:
        raise ValueError(f"asset {asset.name!r} is a plain {asset.archive!r} file; it has no unpacked folder")
    entries = []
    for pattern in asset.unpack.expected_counts:
        first = PurePosixPath(pattern).parts[0]
        if any(char in first for char in "*?["):
            raise ValueError(f"asset {asset.name!r}: pattern {pattern!r} has no fixed top-level folder to link")
        if first not in entries:
            entries.append(first)
    return entries


def place_folder(asset: Asset, folder: Path, raw_dir: Path, *, log: logging.Logger = LOG) -> Path:
    """Use a copy of `asset` the user already unpacked: `folder` is what the manifest's `unpack.into`
    names (e.g. the folder holding VOCdevkit/). Its member counts are checked (once), then each
    top-level entry is linked into the raw folder (nothing when `folder` is that place already).
    Returns the place in the raw folder."""
    folder, dest = Path(folder), asset.unpack_dir(raw_dir)
    verify_folder(asset, folder, log=log)
    for entry in top_level_entries(asset):
        target, link = (folder / entry).resolve(), dest / entry
        if os.path.lexists(link):
            if link.resolve() != target:
                raise ValueError(f"{link} already exists and is not {target}: move it away, or name it as the copy "
                                 f"of asset {asset.name!r} instead")
            continue
        dest.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target, target_is_directory=target.is_dir())
        log.info("%s: %s -> %s", asset.name, link, target)
    return dest


def unpack_record(asset: Asset, raw_dir: Path, *, archive: Path | None = None, folder: Path | None = None) -> dict:
    """What `unpack --summary` writes: the asset, where its files came from and are, their checksum
    (archives) and member counts."""
    dest = asset.unpack_dir(raw_dir)
    record: dict[str, Any] = {"asset": asset.name, "into": str(dest), "expect": asset.unpack.expected_counts}
    if archive is not None:
        marker = read_marker(unpack_marker(archive, dest)) or {}
        record.update(source=str(Path(archive).absolute()), kind="archive", checksum=marker.get("checksum"),
                      found=marker.get("found"))
    else:
        record.update(source=str(Path(folder).absolute()), kind="folder", checksum=None,
                      found=verify_folder(asset, Path(folder)))
    if asset.checksum is None and record["checksum"]:
        record["checksum_note"] = f"computed here: the manifest has no checksum ({asset.checksum_note})"
    return record


def run_fetch(args: argparse.Namespace) -> int:
    _, asset = _manifest(args.manifest, args.asset, args.url_override)
    print(fetch_asset(asset, args.out, local=args.local, offline=args.offline))
    return 0


def run_unpack(args: argparse.Namespace) -> int:
    _, asset = _manifest(args.manifest, args.asset, None)
    if (args.archive is None) == (args.local is None):
        raise ValueError("give exactly one of --archive (an archive to unpack) and --local (a folder unpacked before)")
    if args.archive is not None:
        dest = unpack_asset(asset, args.archive, args.out)
    else:
        dest = place_folder(asset, args.local, args.out)
    if args.summary is not None:
        atomic_write_json(args.summary, unpack_record(asset, args.out, archive=args.archive, folder=args.local))
    print(dest)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    fetch = subparsers.add_parser(
        "fetch", help="download one asset of the download manifest (or take a local copy) and verify it",
        description="Download one asset of the manifest (hmfs/download/manifest.yaml) into --out, trying its "
                    "sources in order, resuming partial transfers and keeping the file only when its size and "
                    "checksum match; prints the verified file's path.")
    fetch.add_argument("--asset", required=True, help="asset name in the manifest, e.g. voc2012_trainval")
    fetch.add_argument("--out", required=True, type=Path, help="downloads folder; the file becomes OUT/<filename>")
    fetch.add_argument("--manifest", type=Path, default=None, help="another manifest file (default: hmfs's own)")
    fetch.add_argument("--url-override", action="append", default=None, metavar="URL",
                       help="a source to use instead of the manifest's (http(s)://, file:// or gdrive:<id>); "
                            "repeat for several, tried in order")
    fetch.add_argument("--local", type=Path, default=None,
                       help="an archive or unpacked folder you already have: verified (once) instead of downloaded")
    fetch.add_argument("--offline", action="store_true",
                       help="never download: verify and use OUT/<filename> if it is there, else stop and say where "
                            "to put it")
    fetch.set_defaults(func=run_fetch)

    unpacker = subparsers.add_parser(
        "unpack", help="unpack a verified archive of the manifest into the raw data folder",
        description="Check the archive (once per size and mtime), refuse unsafe members, unpack it beside the "
                    "destination, check the manifest's member counts and move it into OUT/<unpack.into>; prints "
                    "that folder.")
    unpacker.add_argument("--asset", required=True, help="asset name in the manifest, e.g. sbd")
    unpacker.add_argument("--archive", type=Path, default=None, help="the downloaded archive")
    unpacker.add_argument("--local", type=Path, default=None,
                          help="instead of --archive: a folder you unpacked before (the one holding e.g. VOCdevkit/); "
                               "its member counts are checked (once) and its top-level entries linked into OUT")
    unpacker.add_argument("--out", required=True, type=Path,
                          help="raw data folder (holds VOCdevkit/ + benchmark_RELEASE/, coco/, FSS-1000/)")
    unpacker.add_argument("--manifest", type=Path, default=None, help="another manifest file (default: hmfs's own)")
    unpacker.add_argument("--summary", type=Path, default=None,
                          help="also write a JSON record (source, checksum, member counts) here, last: the workflow's "
                               "marker of an unpacked asset, copied into prepare's record as provenance")
    unpacker.set_defaults(func=run_unpack)
