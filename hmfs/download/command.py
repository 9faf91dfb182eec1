"""`python -m hmfs fetch` and `python -m hmfs unpack`: get, verify and unpack one asset of the download manifest."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import requests

from hmfs.download.http import download
from hmfs.download.manifest import Asset, Manifest, load_manifest, override_urls
from hmfs.download.unpack import unpack
from hmfs.download.verify import record_verified, verify_archive, verify_folder

LOG = logging.getLogger(__name__)


def _manifest(path: Path | None, asset: str, urls: list[str] | None) -> tuple[Manifest, Asset]:
    manifest = load_manifest(path)
    manifest.get(asset)  # an unknown name fails here, listing the known ones
    if urls:
        manifest = override_urls(manifest, {asset: urls})
    return manifest, manifest.get(asset)


def fetch_asset(asset: Asset, out_dir: Path, *, local: Path | None = None,
                session: requests.Session | None = None, log: logging.Logger = LOG) -> Path:
    """A verified copy of `asset`: `out_dir/<filename>`, downloaded unless it is there already.

    With `local` (an archive or unpacked folder the user already has) nothing is downloaded: a
    folder is checked by its member counts and returned; an archive is checked by size and
    checksum and linked as `out_dir/<filename>` (a symbolic link, so a 13 GB file is not copied).
    """
    dest = Path(out_dir) / asset.filename
    if local is None:
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
    computed = verify_archive(asset, Path(archive), log=log)
    return unpack(Path(archive), asset.archive, asset.unpack_dir(raw_dir), asset.unpack.expected_counts,
                  rename=asset.unpack.rename_map, checksum=computed, log=log)


def run_fetch(args: argparse.Namespace) -> int:
    _, asset = _manifest(args.manifest, args.asset, args.url_override)
    print(fetch_asset(asset, args.out, local=args.local))
    return 0


def run_unpack(args: argparse.Namespace) -> int:
    _, asset = _manifest(args.manifest, args.asset, None)
    print(unpack_asset(asset, args.archive, args.out))
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
    fetch.set_defaults(func=run_fetch)

    unpacker = subparsers.add_parser(
        "unpack", help="unpack a verified archive of the manifest into the raw data folder",
        description="Check the archive (once per size and mtime), refuse unsafe members, unpack it beside the "
                    "destination, check the manifest's member counts and move it into OUT/<unpack.into>; prints "
                    "that folder.")
    unpacker.add_argument("--asset", required=True, help="asset name in the manifest, e.g. sbd")
    unpacker.add_argument("--archive", required=True, type=Path, help="the downloaded archive")
    unpacker.add_argument("--out", required=True, type=Path,
                          help="raw data folder (holds VOCdevkit/ + benchmark_RELEASE/, coco/, FSS-1000/)")
    unpacker.add_argument("--manifest", type=Path, default=None, help="another manifest file (default: hmfs's own)")
    unpacker.set_defaults(func=run_unpack)
