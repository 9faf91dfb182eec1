"""Run bookkeeping shared by train, evaluate and bench: devices, seeds, atomic writes, provenance."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hmfs.files import raise_if_disk_full, torch_size

if TYPE_CHECKING:  # torch is imported where used: tables, figures and report run without it
    import torch

DEVICES = ("cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """`cpu` or `cuda` (or `cuda:N`); a clear error when CUDA is asked for but absent."""
    import torch

    if name.split(":")[0] not in DEVICES:
        raise ValueError(f"unknown device {name!r}; accepted: cpu, cuda, cuda:N")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch sees no CUDA GPU; use --device cpu")
    return torch.device(name)


def current_umask() -> int:
    """The process's umask, read without changing it (Linux's /proc/self/status; elsewhere set and restored)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _readable_as_umask_allows(fd: int) -> None:
    """Give a temporary file the mode a plain open() would have (mkstemp makes it 0600, owner only)."""
    os.fchmod(fd, 0o666 & ~current_umask())


def atomic_write_bytes(path: Path, data: bytes, fsync: bool = True) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename.

    A killed process never leaves half a file; `fsync` also makes it survive a machine crash
    (skipped for bulk data that can be regenerated). The file gets the mode the umask allows (as
    with open()), so a group can read results on a shared cluster.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        _readable_as_umask_allows(fd)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        raise_if_disk_full(path, error, lambda: len(data))
        raise


def atomic_write_text(path: Path, text: str, fsync: bool = True) -> None:
    atomic_write_bytes(path, text.encode(), fsync)


def atomic_write_json(path: Path, obj: Any, fsync: bool = True) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n", fsync)


def atomic_torch_save(path: Path, obj: Any) -> None:
    """torch.save to a temporary file, then rename: a killed job never leaves half a file (mode as the umask allows)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        _readable_as_umask_allows(fd)
        # Through the open file, not its name: torch names the archive inside after the file it is
        # given, so a (random) temporary name would make equal checkpoints differ in their bytes.
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        raise_if_disk_full(path, error, lambda: torch_size(obj))  # a DiskFull naming the bytes needed and free
        raise


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit(start: Path | None = None) -> str | None:
    """The commit of the hmfs checkout (with `-dirty` when it has changes), or None outside git."""
    where = Path(start) if start else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=where, capture_output=True,
            text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def environment() -> dict[str, Any]:
    """Versions and hardware a result was made with."""
    import torch

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "host": platform.node(),
        "cpu_threads": torch.get_num_threads(),
        "git_commit": git_commit(),
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info


def seed_everything(seed: int) -> None:
    """Seed torch's global generators (episodes draw from their own per-episode generators)."""
    import torch

    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
