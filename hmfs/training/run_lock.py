"""One live trainer per run: a lock file in the run's state folder naming its holder, taken over once the holder is gone."""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import platform
import subprocess
import time
from pathlib import Path

from hmfs.files import pid_start_time, process_alive
from hmfs.runtime import atomic_write_json

log = logging.getLogger(__name__)

LOCK_NAME = "lock.json"
# A holder on another host is gone when its lock has not been refreshed for this long (the trainer
# refreshes it at least every HEARTBEAT_SECONDS while it trains or validates).
STALE_AFTER_SECONDS = 600
HEARTBEAT_SECONDS = 30


class RunLocked(RuntimeError):
    """Another live trainer holds this run's state."""


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def read_lock(path: Path) -> dict | None:
    """The lock's holder, {} for a lock being written (or damaged), None when there is no lock."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    try:
        holder = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return holder if isinstance(holder, dict) else {}


def _slurm_job_gone(job_id: str) -> bool | None:
    """Whether SLURM no longer runs job `job_id` (None when squeue cannot tell)."""
    try:
        out = subprocess.run(["squeue", "-h", "-j", str(job_id), "-o", "%T"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return True if "Invalid job id" in out.stderr else None
    return out.stdout.strip() not in ("RUNNING", "COMPLETING", "SUSPENDED", "STOPPED")


def holder_process_gone(holder: dict) -> bool:
    """Whether the holder ran on this host and its process is gone (or its PID now belongs to another process)."""
    return (holder.get("host") == platform.node() and bool(holder.get("pid"))
            and not process_alive(int(holder["pid"]), holder.get("pid_start")))


def holder_gone(holder: dict, lock_age: float) -> tuple[bool, str]:
    """Whether a lock's holder is gone, and how that was told (the same host's process table, SLURM, or silence)."""
    if not holder:
        return lock_age > 60, "an unreadable lock file"
    if holder.get("host") == platform.node():
        gone = holder_process_gone(holder)
        return gone, f"process {holder.get('pid')} on this host is {'gone' if gone else 'alive'}"
    job, mine = holder.get("slurm_job_id"), os.environ.get("SLURM_JOB_ID")
    if job and job == mine:
        return True, f"it was this SLURM job ({job}) before it was requeued"
    if job and _slurm_job_gone(job):
        return True, f"SLURM job {job} is no longer running"
    if lock_age > STALE_AFTER_SECONDS:
        return True, f"its lock was last refreshed {lock_age / 60:.0f} min ago"
    return False, f"its lock was refreshed {lock_age:.0f} s ago"


class RunLock:
    """The lock of one run's state folder, held by this process: `update` rewrites what it says (and refreshes it)."""

    def __init__(self, path: Path, holder: dict, previous: dict | None):
        self.path, self.holder, self.previous = path, holder, previous
        self.refreshed = time.monotonic()

    def update(self, **fields) -> None:
        self.holder.update(fields, refreshed=_now())
        atomic_write_json(self.path, self.holder, fsync=False)
        self.refreshed = time.monotonic()

    def heartbeat(self, **fields) -> None:
        """Refresh the lock (and record `fields`) when HEARTBEAT_SECONDS have passed since the last time."""
        if time.monotonic() - self.refreshed >= HEARTBEAT_SECONDS:
            self.update(**fields)

    def release(self) -> None:
        if (read_lock(self.path) or {}).get("token") == self.holder["token"]:
            self.path.unlink(missing_ok=True)


def acquire(state_dir: Path, about: dict) -> RunLock:
    """Take the lock of `state_dir` for this process, or raise RunLocked naming the live holder.

    A lock whose holder is gone (killed, its node lost) is taken over; `RunLock.previous` then holds
    what that holder last wrote (its attempt's start and last save), for the record of the killed attempt.
    """
    path = Path(state_dir) / LOCK_NAME
    pid = os.getpid()
    holder = {"host": platform.node(), "pid": pid, "pid_start": pid_start_time(pid), "token": f"{platform.node()}:{pid}:{time.time_ns()}",
              "since": _now(), "refreshed": _now(), **about}
    previous = None
    for _ in range(5):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            current = read_lock(path)
            if current is None:
                continue  # released meanwhile
            age = time.time() - path.stat().st_mtime if path.exists() else 0.0
            gone, how = holder_gone(current, age)
            if not gone:
                raise RunLocked(
                    f"{state_dir} is being trained by process {current.get('pid')} on {current.get('host')} (since "
                    f"{current.get('since')}{', SLURM job ' + str(current['slurm_job_id']) if current.get('slurm_job_id') else ''}; "
                    f"{how}): wait for it to finish or stop it; if it is gone, delete {path}")
            log.warning("taking over the lock of %s: %s", state_dir, how)
            previous = current
            stale = path.with_name(f".{LOCK_NAME}.{pid}.stale")
            with contextlib.suppress(FileNotFoundError):
                os.replace(path, stale)
                stale.unlink()
            continue
        with os.fdopen(fd, "w") as handle:
            json.dump(holder, handle)
        return RunLock(path, holder, previous)
    raise RunLocked(f"could not take the lock {path}: other processes keep taking it")


@contextlib.contextmanager
def held(state_dir: Path, about: dict, hold: bool = True):
    """The run's lock for the duration of the block (`hold=False`: none, e.g. on the ranks other than 0)."""
    if not hold:
        yield None
        return
    lock = acquire(state_dir, about)
    try:
        yield lock
    finally:
        lock.release()
