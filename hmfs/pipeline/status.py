"""Where the configured grid stands, read from its files alone (so it works on a head node while SLURM runs the jobs)."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hmfs.files import read_json_lines
from hmfs.pipeline.grid import Run, evaluations, training_runs
from hmfs.pipeline.paths import TRAINING_FILES, evaluation_path, run_dir, state_dir, table_paths
from hmfs.training.run_lock import LOCK_NAME, STALE_AFTER_SECONDS, holder_process_gone, read_lock
from hmfs.training.stopping import stop_without_better

# waiting: not started; running: its trainer refreshed its lock lately; stopped: saved on a stop signal (a time
# limit) and waits for its next job; failed: its last attempt failed; stalled: a lock nobody has refreshed for
# `stalled_after` seconds, or whose process is gone (killed: the next attempt resumes); done: train_summary.json.
STATES = ("waiting", "running", "stopped", "failed", "stalled", "done")
RECENT_EPOCHS = 5  # seconds per epoch: the median of the last few


@dataclass
class RunStatus:
    run: str
    state: str
    detail: str = ""
    epochs_done: int = 0
    epochs: int = 0  # the cap
    phase: str | None = None  # train | val while running
    step: int | None = None
    steps: int | None = None
    best_val_miou: float | None = None
    best_epoch: int | None = None
    last_val_miou: float | None = None
    attempts: list[str] = field(default_factory=list)  # each attempt's outcome, oldest first
    slurm_job_id: str | None = None
    host: str | None = None
    pid: int | None = None
    seconds_per_epoch: float | None = None
    episodes_per_second: float | None = None
    hours_left: tuple[float, float] | None = None  # (no better epoch from now on, to the cap)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def run_status(config: dict[str, Any], run: Run, workdir: Path, now: float, stalled_after: float) -> RunStatus:
    """One training run's status from its output folder (train_summary.json) and state folder (lock, history, attempts)."""
    out = workdir / config["output_dir"]
    schedule = config["train"][run.benchmark]
    state = Path(state_dir(str(out), run))
    status = RunStatus(run=run.key, state="waiting", epochs=schedule["epochs"])
    history = read_json_lines(state / "history.jsonl")
    attempts = read_json_lines(state / "attempts.jsonl")
    status.attempts = [a.get("outcome", "?") for a in attempts]
    if history:
        last = history[-1]
        status.epochs_done, status.last_val_miou = len(history), last.get("val_miou")
        status.best_epoch = last.get("best_epoch")
        best = [h["val_miou"] for h in history if h.get("epoch") == status.best_epoch]
        status.best_val_miou = best[0] if best else None
        status.seconds_per_epoch = statistics.median(h["seconds"] for h in history[-RECENT_EPOCHS:])
    summary = _read_json(Path(run_dir(str(out), run)) / TRAINING_FILES["summary"])
    lock = read_lock(state / LOCK_NAME)
    if summary is not None:
        status.state = "done"
        status.detail = (summary.get("stopped") or {}).get("detail", "")
        status.epochs_done = summary.get("epochs", status.epochs_done)
        status.best_epoch, status.best_val_miou = summary.get("best_epoch"), summary.get("best_val_miou")
        if summary.get("seconds") and summary.get("train_episodes_per_epoch"):
            status.episodes_per_second = summary["train_episodes_per_epoch"] * status.epochs_done / summary["seconds"]
    elif lock is not None:
        _from_lock(status, lock, (state / LOCK_NAME), now, stalled_after)
    elif attempts:
        last = attempts[-1]
        if last.get("outcome") == "stopped":
            status.state = "stopped"
            status.detail = f"stopped by {last.get('signal')} at epoch/step {last.get('to')}; waits for its next job"
        elif last.get("outcome") in ("failed", "no_progress"):
            status.state = "failed"
            status.detail = last.get("error") or f"stopped by {last.get('signal')} before a single step"
        status.slurm_job_id, status.host = last.get("slurm_job_id"), last.get("host")
    elif history:  # progress that no trainer holds and no attempt's end recorded (a trainer from before locks)
        status.state = "stopped"
        status.detail = f"saved up to epoch {len(history)}; no trainer holds it"
    if status.state != "done" and status.seconds_per_epoch:
        episodes = (lock or {}).get("train_episodes")
        if episodes:
            status.episodes_per_second = episodes / status.seconds_per_epoch
        shortest = stop_without_better(schedule["epochs"], schedule.get("patience"), schedule.get("min_epochs") or 0,
                                       status.best_epoch)
        status.hours_left = tuple(max(0, n - status.epochs_done) * status.seconds_per_epoch / 3600
                                  for n in (shortest, schedule["epochs"]))
    return status


def _from_lock(status: RunStatus, lock: dict, path: Path, now: float, stalled_after: float) -> None:
    """running or stalled, from a lock's holder and how long ago it was refreshed."""
    status.host, status.pid, status.slurm_job_id = lock.get("host"), lock.get("pid"), lock.get("slurm_job_id")
    status.phase, status.step, status.steps = lock.get("phase"), lock.get("step"), lock.get("steps")
    try:
        age = now - path.stat().st_mtime
    except OSError:
        age = 0.0
    if holder_process_gone(lock):
        status.state = "stalled"
        status.detail = f"process {lock['pid']} is gone (killed?); the next attempt resumes from the last saved state"
    elif age > stalled_after:
        status.state = "stalled"
        status.detail = f"no progress for {age / 60:.0f} min (process {lock.get('pid')} on {lock.get('host')})"
    else:
        status.state = "running"
        status.detail = f"process {lock.get('pid')} on {lock.get('host')}, refreshed {age:.0f} s ago"
        status.attempts = [*status.attempts, "running"]


def grid_status(config: dict[str, Any], workdir: Path, now: float | None = None,
                stalled_after: float = STALE_AFTER_SECONDS) -> dict:
    """Every training run's status, then the evaluations and tables done of the configured total."""
    now = time.time() if now is None else now
    out = Path(workdir) / config["output_dir"]
    runs = [run_status(config, run, Path(workdir), now, stalled_after) for run in training_runs(config)]
    evals = evaluations(config)
    evals_done = sum((Path(workdir) / evaluation_path(config["output_dir"], e)).is_file() for e in evals)
    tables = list(config["tables"])
    tables_done = sum(Path(table_paths(str(out), table)["csv"]).is_file() for table in tables)
    counts = {state: sum(r.state == state for r in runs) for state in STATES}
    return {"output_dir": str(out), "time": now, "runs": [asdict(r) for r in runs], "trainings": counts,
            "evaluations": {"done": evals_done, "total": len(evals)}, "tables": {"done": tables_done, "total": len(tables)}}
