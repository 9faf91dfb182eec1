"""Acquisition of the real datasets and weights: a reviewed manifest, verified resumable downloads, safe unpacking."""

from __future__ import annotations


# The errors are ValueErrors, like every user-facing error of hmfs, so `python -m hmfs` reports
# them as one line that names the bad value and the fix, without a traceback.
class DownloadError(ValueError):
    """No source gave a verified copy of an asset; the message lists each source and where to put a copy."""


class VerificationError(ValueError):
    """A file or folder does not match the manifest (size, checksum or member counts)."""


class UnsafeArchiveError(ValueError):
    """An archive member could write outside the unpack folder or is not a plain file or folder."""


class DiskSpaceError(ValueError):
    """The destination folder lacks the free space that a transfer or an unpack needs."""
