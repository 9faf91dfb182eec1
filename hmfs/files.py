"""The project's files when something is wrong with them: one line naming an unreadable file, a full disk, stale temporaries."""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

# atomic_write_bytes and atomic_torch_save (hmfs.runtime) write `.<name>.<random>.tmp` beside the file.
TEMPORARY_PATTERN = ".*.tmp"


class UnreadableFile(ValueError):
    """A file that torch cannot load (truncated, empty, not a torch file, or holding code): one line naming it."""


class DiskFull(OSError):
    """A write that found no space: names the file, the bytes it needed and the bytes free."""


def _reason(error: BaseException) -> str:
    """The first line of a loading error, without torch's advice to load with weights_only=False."""
    text = str(error).strip()
    if "Unsupported global" in text:
        return "it holds Python objects other than tensors, which are never unpickled here"
    if "Weights only load failed" in text:  # the restricted unpickler met bytes no pickle of weights has
        return "it is not a torch file"
    first = text.splitlines()[0] if text else ""
    if isinstance(error, EOFError) or "Ran out of input" in first:
        return "it ends early (empty or truncated)"
    if "central directory" in first or "failed finding" in first:
        return "it is a truncated or damaged archive"
    if "invalid load key" in first or "magic number" in first:
        return "it is not a torch file"
    return f"{type(error).__name__}: {first[:160]}"


def load_torch_file(path: Path, what: str, fix: str) -> Any:
    """torch.load(path, weights_only=True) on the CPU; an UnreadableFile of one line (what, path, size, why, `fix`)."""
    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except Exception as error:  # noqa: BLE001 - torch raises many types for a bad file; all mean "not loadable"
        size = path.stat().st_size if path.is_file() else 0
        raise UnreadableFile(f"{what} {path} cannot be read ({size:,} bytes; {_reason(error)}): {fix}") from None


def read_json_lines(path: Path) -> list[dict]:
    """The complete JSON lines of a file others append to: a line half-written by a killed process is skipped."""
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def looks_like_no_space(error: BaseException) -> bool:
    """ENOSPC or EDQUOT, or torch's writer failing (it reports a full disk as 'file write failed')."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("file write failed" in text or "inline_container" in text)


def raise_if_disk_full(path: Path, error: BaseException, needed: Callable[[], int]) -> None:
    """Turn a failed write of `path` into a DiskFull naming the bytes needed and free, when space is what ran out."""
    if not looks_like_no_space(error):
        return
    free, size = _free_bytes(Path(path).parent), needed()
    free_text = f"{free:,} bytes free" if free is not None else "free space unknown"
    raise DiskFull(errno.ENOSPC, f"no space left to write {path}: it needs {size:,} bytes, {free_text} on that "
                                 f"file system; free some space (or move output_dir) and run the same command again, "
                                 f"nothing was half-written") from None


def torch_size(obj: Any) -> int:
    """The bytes torch.save writes for `obj` (serialised to memory)."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.tell()


def remove_stale_temporaries(folder: Path) -> int:
    """Delete the temporary files that killed atomic writes left in `folder`; returns the bytes freed.

    Only for a folder whose one writer is the caller (a run's state or output folder under its lock).
    """
    freed, count = 0, 0
    for tmp in Path(folder).glob(TEMPORARY_PATTERN):
        try:
            if tmp.is_file():
                size = tmp.stat().st_size
                tmp.unlink()
                freed, count = freed + size, count + 1
        except OSError:
            continue
    if count:
        log.info("removed %d temporary file(s) of interrupted saves in %s (%s bytes)", count, folder, f"{freed:,}")
    return freed


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def pid_start_time(pid: int) -> int | None:
    """A process's start time in clock ticks since boot (/proc), which tells a reused PID from its first owner."""
    fields = _proc_stat(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None


def process_alive(pid: int, start_time: int | None = None) -> bool:
    """Whether process `pid` on this host is alive (and, given `start_time`, is the same process as then)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    fields = _proc_stat(pid)
    if fields and fields[0] in ("Z", "X"):  # a zombie: killed, not yet reaped by its parent
        return False
    if start_time is not None:
        now = pid_start_time(pid)
        return now is None or now == start_time
    return True
