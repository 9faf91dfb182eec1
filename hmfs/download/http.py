"""Verified, resumable downloads of manifest assets from HTTP(S), file:// and Google Drive sources, mirror by mirror."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from hmfs.download import DiskSpaceError, DownloadError, VerificationError
from hmfs.download.gdrive import drive_url, fetch_from_drive
from hmfs.download.manifest import Asset
from hmfs.download.verify import check_file, check_free_space, read_marker, record_verified, verify_archive
from hmfs.runtime import atomic_write_json

LOG = logging.getLogger(__name__)
CHUNK_BYTES = 1 << 20
TIMEOUT_S = (30.0, 120.0)  # (connect, between two reads)
RESUME_ATTEMPTS = 5  # reconnections with Range after a transfer broke off, as long as each one adds bytes
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


def make_session(retries: int = 5, backoff_s: float = 2.0) -> requests.Session:
    """A requests Session that retries refused or broken connections and HTTP 5xx, backing off
    (`backoff_s` × 2^n seconds between tries)."""
    retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff_s,
                  status_forcelist=(500, 502, 503, 504), allowed_methods=frozenset({"GET", "HEAD"}))
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    # Byte offsets for Range must be those of the file on disk, so no transparent decompression.
    session.headers["Accept-Encoding"] = "identity"
    return session


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class Progress:
    """Logs bytes, percent, rate and ETA of one transfer every `every_s` seconds or `every_fraction`
    of the total, whichever comes first (and once at the end)."""

    def __init__(self, label: str, log: logging.Logger, every_s: float = 10.0, every_fraction: float = 0.05,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.log, self.every_s, self.every_fraction, self.clock = label, log, every_s, every_fraction, clock
        self.start(0, None)

    def start(self, done: int, total: int | None) -> None:
        """A new request begins at byte `done` of `total` (None: unknown); the rate counts from here."""
        self.first = self.last = done
        self.total = total
        self.started = self.last_time = self.clock()

    def update(self, done: int, total: int | None = None) -> None:
        self.total = total if total is not None else self.total
        now = self.clock()
        step = self.every_fraction * self.total if self.total else None
        finished = self.total is not None and done >= self.total
        if now - self.last_time >= self.every_s or (step and done - self.last >= step) or finished:
            self.last, self.last_time = done, now
            rate = (done - self.first) / max(now - self.started, 1e-6)
            if self.total:
                eta = (self.total - done) / rate if rate > 0 else float("inf")
                self.log.info("%s: %s of %s (%.0f%%), %s/s, ETA %s", self.label, _size(done), _size(self.total),
                              100 * done / self.total, _size(rate), "?" if eta == float("inf") else f"{eta:.0f} s")
            else:
                self.log.info("%s: %s, %s/s", self.label, _size(done), _size(rate))


def _resume_offset(part: Path, sidecar: Path, url: str, asset: Asset, log: logging.Logger) -> int:
    """Bytes of `part` to keep: all of them when they came from `url` (recorded in `sidecar`) and do
    not exceed the asset's size; none otherwise (another mirror may serve another file)."""
    if part.exists():
        size = part.stat().st_size
        if (read_marker(sidecar) or {}).get("url") == url and (asset.size is None or size <= asset.size):
            return size
        log.info("%s: discarding %s (%s bytes not from %s)", asset.name, part, f"{size:,}", url)
        part.unlink()
    atomic_write_json(sidecar, {"url": url})
    return 0


def _algorithm(asset: Asset) -> str:
    return asset.checksum.algorithm if asset.checksum is not None else "sha256"


def _transfer_http(session: requests.Session, url: str, part: Path, sidecar: Path, asset: Asset,
                   progress: Progress, chunk_bytes: int, log: logging.Logger) -> str | None:
    """Stream `url` into `part`, resuming with `Range: bytes=N-` from what `part` holds.

    Returns the file's hex digest when it was written in one pass from byte 0 (hashed as it
    streamed), None when it was resumed (then the whole file is hashed once it is complete).
    """
    for _ in range(RESUME_ATTEMPTS + 1):
        offset = _resume_offset(part, sidecar, url, asset, log)
        if asset.size is not None and offset == asset.size:
            return None
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            with session.get(url, headers=headers, stream=True, timeout=TIMEOUT_S) as response:
                if response.status_code == 416 and offset:  # nothing after byte `offset`: complete, or longer
                    whole = response.headers.get("Content-Range", "").rpartition("/")[2]
                    if whole == str(offset):
                        return None
                    log.warning("%s: %s refused to resume at byte %s; restarting", asset.name, url, f"{offset:,}")
                    part.unlink()
                    continue
                response.raise_for_status()
                if offset:
                    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
                    if response.status_code != 206 or match is None or int(match.group(1)) != offset:
                        log.warning("%s: %s ignored the Range request (HTTP %d); restarting from byte 0", asset.name,
                                    url, response.status_code)
                        offset = 0
                length = response.headers.get("Content-Length")
                total = offset + int(length) if length is not None and length.isdigit() else asset.size
                if asset.size is not None and total != asset.size:
                    raise DownloadError(f"the server announces {total:,} bytes, but asset {asset.name!r} has "
                                        f"{asset.size:,}: not the same file")
                if total is not None and asset.size is None:  # asset.size was checked before the request
                    check_free_space(part.parent, total - offset, f"downloading {asset.filename}")
                progress.start(offset, total)
                before = offset
                digest = hashlib.new(_algorithm(asset)) if offset == 0 else None
                with open(part, "ab" if offset else "wb") as handle:
                    try:
                        for chunk in response.iter_content(chunk_bytes):
                            handle.write(chunk)
                            if digest is not None:
                                digest.update(chunk)
                            progress.update(handle.tell())
                    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError) as error:
                        if handle.tell() == before:
                            raise
                        log.warning("%s: transfer from %s broke off at byte %s (%s); resuming", asset.name, url,
                                    f"{handle.tell():,}", type(error).__name__)
                        continue
                    got = handle.tell()
            if total is None or got >= total:
                return digest.hexdigest() if digest is not None else None
            log.warning("%s: %s ended at byte %s of %s; resuming", asset.name, url, f"{got:,}", f"{total:,}")
            if got == before:
                raise DownloadError(f"the transfer ended at byte {got:,} of {total:,} without progress")
        except requests.exceptions.HTTPError as error:
            raise DownloadError(f"HTTP {error.response.status_code} {error.response.reason}") from None
    raise DownloadError(f"the transfer broke off {RESUME_ATTEMPTS + 1} times; the bytes so far are kept in {part} "
                        "and the next run resumes from them")


def _transfer_file(url: str, part: Path, sidecar: Path, asset: Asset, progress: Progress, chunk_bytes: int,
                   log: logging.Logger) -> str | None:
    """Copy a `file://` source into `part`, resuming from what `part` holds; returns the hex digest
    as `_transfer_http` does."""
    parsed = urllib.parse.urlparse(url)
    source = Path(urllib.request.url2pathname(parsed.path))
    if not source.is_file():
        raise DownloadError(f"{source} does not exist")
    total = source.stat().st_size
    offset = _resume_offset(part, sidecar, url, asset, log)
    if offset > total:
        part.unlink()
        offset = _resume_offset(part, sidecar, url, asset, log)
    if asset.size is None:
        check_free_space(part.parent, total - offset, f"copying {asset.filename}")
    progress.start(offset, total)
    digest = hashlib.new(_algorithm(asset)) if offset == 0 else None
    with open(source, "rb") as reader, open(part, "ab" if offset else "wb") as writer:
        reader.seek(offset)
        for block in iter(lambda: reader.read(chunk_bytes), b""):
            writer.write(block)
            if digest is not None:
                digest.update(block)
            progress.update(writer.tell())
    return digest.hexdigest() if digest is not None else None


def _readable(url: str) -> str:
    return drive_url(url[len("gdrive:"):]) if url.startswith("gdrive:") else url


def download(asset: Asset, dest: Path, *, session: requests.Session | None = None, chunk_bytes: int = CHUNK_BYTES,
             log: logging.Logger = LOG) -> Path:
    """Put a verified copy of `asset` at `dest` and return `dest`.

    An existing `dest` (a copy put there by hand, or an earlier download) is verified, once per
    size and mtime, and used. Otherwise each URL of the asset is tried in order: the bytes stream
    to `.<name>.part` beside `dest` (resumed from an earlier attempt at the same URL), the complete
    file is checked (size, checksum), and only then renamed to `dest`. A corrupt file is deleted
    and the next URL tried; when every URL fails, DownloadError lists each with its reason and the
    path where a copy downloaded by hand should be put.
    """
    dest = Path(dest)
    if dest.exists():
        try:
            verify_archive(asset, dest, log=log)
        except VerificationError as error:
            raise VerificationError(f"{error}. Delete {dest} to download it again, or replace it with a good "
                                    "copy") from None
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    sidecar = dest.with_name(f".{dest.name}.part.json")  # which URL the bytes in `part` came from
    if asset.size is not None:
        kept = part.stat().st_size if part.exists() else 0
        check_free_space(dest.parent, max(asset.size - kept, 0), f"downloading {asset.filename}")
    own_session = session is None
    session = make_session() if session is None else session
    failures: list[tuple[str, str]] = []
    try:
        for url in asset.urls:
            progress = Progress(f"{asset.name} from {_readable(url)}", log)
            log.info("%s: downloading %s -> %s", asset.name, _readable(url), dest)
            try:
                streamed = None
                if url.startswith("gdrive:"):
                    # A Drive file reaches `part` only once complete (gdown keeps its own partial file).
                    if _resume_offset(part, sidecar, url, asset, log) == 0:
                        fetch_from_drive(asset, url[len("gdrive:"):], part, dest, progress=progress.update)
                elif url.startswith("file://"):
                    streamed = _transfer_file(url, part, sidecar, asset, progress, chunk_bytes, log)
                else:
                    streamed = _transfer_http(session, url, part, sidecar, asset, progress, chunk_bytes, log)
                stat = part.stat()
                computed = check_file(asset, part, streamed)
            except DiskSpaceError:
                raise
            except VerificationError as error:
                part.unlink(missing_ok=True)
                sidecar.unlink(missing_ok=True)
                failures.append((url, str(error)))
                log.warning("%s: %s", asset.name, error)
                continue
            except (DownloadError, requests.RequestException, OSError) as error:
                reason = str(error) if isinstance(error, DownloadError) else f"{type(error).__name__}: {error}"
                failures.append((url, reason))
                log.warning("%s: %s failed: %s", asset.name, _readable(url), reason)
                continue
            os.replace(part, dest)
            sidecar.unlink(missing_ok=True)
            record_verified(asset, dest, computed, (stat.st_size, stat.st_mtime_ns), log)
            log.info("%s: %s verified (%s)", asset.name, dest, computed)
            return dest
    finally:
        if own_session:
            session.close()
    if part.exists() and part.stat().st_size == 0:
        part.unlink()
    if not part.exists():  # bytes worth resuming keep their record of where they came from
        sidecar.unlink(missing_ok=True)
    raise DownloadError(_all_failed(asset, dest, failures))


def _all_failed(asset: Asset, dest: Path, failures: list[tuple[str, str]]) -> str:
    checks = [f"{asset.size:,} bytes" if asset.size is not None else None,
              str(asset.checksum) if asset.checksum is not None else None]
    check = ", ".join(c for c in checks if c) or "no published size or checksum"
    lines = [f"could not download asset {asset.name!r} ({asset.filename}) from any of its {len(failures)} sources:"]
    lines += [f"  - {_readable(url)}: {reason}" for url, reason in failures]
    lines.append(f"Download it by hand from one of them and put it at {dest.absolute()} ({check}); the next run "
                 "verifies and uses that copy.")
    return "\n".join(lines)
