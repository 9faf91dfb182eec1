"""Google Drive sources (`gdrive:<id>` in the manifest): fetched with gdown; Drive's refusals become clear errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from hmfs.download import DownloadError
from hmfs.download.manifest import Asset
from hmfs.download.verify import looks_like_html

GDOWN_RETRIES = 3
GDOWN_TIMEOUT_S = 60.0

Progress = Callable[[int, "int | None"], None]


class DriveRefusedError(DownloadError):
    """Google Drive answered with a page (quota exceeded, permission, virus-scan warning) instead of the file."""


def drive_url(file_id: str) -> str:
    """The address of a Drive file that a browser can open to download it by hand."""
    return f"https://drive.google.com/uc?id={file_id}"


def drive_transfer(file_id: str, out: Path, *, progress: Progress | None = None) -> None:
    """The one call into Google Drive, which tests replace: write Drive file `file_id` to `out`.

    gdown follows Drive's confirmation step for large files, keeps the bytes of an interrupted
    transfer in its own `<out>XXXXXXXX.part` and resumes from them, and moves the file to `out` only
    when it is complete (an existing `out` is taken as complete). It refuses a text/html answer
    that carries no file and raises FileURLRetrievalError with Drive's message (e.g. quota).
    """
    try:
        import gdown
        import requests
        from gdown.exceptions import DownloadError as GdownDownloadError
        from gdown.exceptions import FileURLRetrievalError
    except ImportError as error:
        raise DownloadError(f"Google Drive downloads need gdown ({error}); install it with `pip install gdown`") \
            from None
    try:
        # use_cookies=False: nothing is read from or written to ~/.cache/gdown.
        gdown.download(id=file_id, output=str(out), quiet=True, use_cookies=False, resume=True,
                       retries=GDOWN_RETRIES, timeout=GDOWN_TIMEOUT_S, progress=progress)
    except FileURLRetrievalError as error:
        raise DriveRefusedError(" ".join(str(error).split())) from None
    except (GdownDownloadError, requests.RequestException) as error:
        raise DownloadError(f"{type(error).__name__}: {' '.join(str(error).split())}") from None


def fetch_from_drive(asset: Asset, file_id: str, part: Path, dest: Path, *, progress: Progress | None = None) -> None:
    """Download Drive file `file_id` of `asset` to `part` (complete, not yet verified).

    Raises DriveRefusedError naming the asset, the Drive URL and `dest`, where a copy downloaded by
    hand in a browser should be put: the next run verifies that copy and uses it.
    """
    url = drive_url(file_id)
    fix = (f"open {url} in a browser (signed in to Google, which often lifts the quota), download the file and "
           f"put it at {Path(dest).absolute()}; the next run verifies and uses that copy")
    # One file per Drive id: gdown resumes its partial file, and two ids may be different zips.
    drive_out = dest.with_name(f".{dest.name}.gdrive-{file_id}")
    try:
        drive_transfer(file_id, drive_out, progress=progress)
    except DriveRefusedError as error:
        reason = str(error).rstrip(". ")
        raise DriveRefusedError(f"Google Drive refused asset {asset.name!r} ({url}): {reason}. To fix: {fix}") \
            from None
    if not drive_out.is_file():
        raise DownloadError(f"Google Drive transfer of asset {asset.name!r} ({url}) wrote no file {drive_out}. "
                            f"To fix: {fix}")
    if looks_like_html(drive_out):
        drive_out.unlink()
        raise DriveRefusedError(f"Google Drive sent an HTML page instead of asset {asset.name!r} ({url}): usually "
                                f"its download quota is exceeded or the file needs a confirmation. To fix: {fix}")
    os.replace(drive_out, part)
