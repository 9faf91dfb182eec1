"""One training run's attempts: the stop signals it saves on, its record per attempt, and the no-progress guard."""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import platform
import signal
import threading
from pathlib import Path

from hmfs.files import read_json_lines
from hmfs.training.distributed import Ranks, agreed_signal

log = logging.getLogger(__name__)

# Signals that make a run save its state at the next step boundary and stop: SIGURG is what the
# workflow asks SLURM to send ahead of a job's time limit (`sbatch --signal=URG@<seconds>`): its
# default action is to ignore it, so the job's other processes (the job's Snakemake, the rule's
# shell) keep running while this one saves. SIGUSR1 serves hand-written sbatch scripts, SIGTERM
# preemption, `scontrol requeue` and `scancel` (which follow it with SIGKILL after KillWait), SIGINT
# Ctrl-C in the terminal of a local `snakemake` or `hmfs train` (a second Ctrl-C interrupts at once).
STOP_SIGNALS = (signal.SIGURG, signal.SIGUSR1, signal.SIGTERM, signal.SIGINT)
EXIT_STOPPED = 75  # sysexits' EX_TEMPFAIL: state saved on a stop signal, run the same command again to resume
# An attempt that gets a stop signal before finishing a single training step, or fails before saving
# anything, makes no progress; after this many such attempts in a row, a retry (Snakemake's attempt
# > 1) refuses to start.
NO_PROGRESS_LIMIT = 2
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TrainingStopped(Exception):
    """A stop signal arrived; the resumable state holds every finished step."""

    def __init__(self, signal_name: str, epoch: int, step: int):
        super().__init__(f"stopped by {signal_name} at epoch {epoch}, step {step}")
        self.signal_name, self.epoch, self.step = signal_name, epoch, step


class TrainingDiverged(RuntimeError):
    """The loss or a gradient became NaN or infinite: the step was not taken and nothing non-finite is saved."""


class TrainingStalled(RuntimeError):
    """Attempts keep stopping before any training step: retrying as they are cannot finish the run."""


class StopRequest:
    """Records the first stop signal received; the training loop acts on it at its next step boundary.

    `progress` counts the training steps and validation passes this process finished; the handler
    keeps its value at the signal, which tells an attempt that made progress from one that did not.
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.progress = 0
        self.progress_at_signal: int | None = None

    def __call__(self, signum: int, frame) -> None:
        if self.signal_name is not None and signum == signal.SIGINT:  # Ctrl-C again: do not wait for the step
            raise KeyboardInterrupt
        if self.signal_name is None:
            self.signal_name, self.progress_at_signal = signal.Signals(signum).name, self.progress
            log.warning("%s received: saving the state after the current step, then stopping", self.signal_name)

    def agreed(self, ranks: Ranks) -> bool:
        """Whether a stop signal arrived, on any rank: the ranks agree, so that all stop at this step boundary."""
        if not ranks.distributed:
            return self.signal_name is not None
        agreed = agreed_signal(signal.Signals[self.signal_name].value if self.signal_name else 0, ranks)
        if agreed and self.signal_name is None:  # another rank's signal: this one stops with it
            self.signal_name, self.progress_at_signal = signal.Signals(agreed).name, self.progress
        return agreed != 0

    @contextlib.contextmanager
    def installed(self):
        """Handle STOP_SIGNALS while training (signal handlers can only be set from the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self) for sig in STOP_SIGNALS}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def attempt_environment() -> dict:
    """Where this attempt runs: host, process, SLURM job (id, times requeued) and the GPUs it was given."""
    env = os.environ
    return {"host": platform.node(), "pid": os.getpid(), "slurm_job_id": env.get("SLURM_JOB_ID"),
            "slurm_restart_count": env.get("SLURM_RESTART_COUNT"), "cuda_visible_devices": env.get("CUDA_VISIBLE_DEVICES")}


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


class AttemptRecord:
    """One attempt's line in attempts.jsonl: where it ran, where it started and what it saved last."""

    def __init__(self, path: Path, snakemake_attempt: int = 1, write: bool = True):
        self.path, self.writes = path, write  # only rank 0 of a data-parallel run writes the record
        self.where = {"snakemake_attempt": snakemake_attempt, **attempt_environment()}
        self.started = _now()
        self.start: list[int] | None = None  # [epoch, step] the attempt resumed from
        self.saved: list[int] | None = None  # [epoch, step] of the last state it saved

    def write(self, outcome: str, signal_name: str | None, **extra) -> None:
        """Append the record: outcome finished | stopped | no_progress | failed (| killed: see record_killed)."""
        if self.writes:
            _append(self.path, {"outcome": outcome, "signal": signal_name, "from": self.start,
                                "to": self.saved or self.start, "started": self.started, "ended": _now(),
                                **extra, **self.where})


def _append(path: Path, record: dict) -> None:
    """One line of attempts.jsonl; a failure to write it (the disk that failed the save) is only a warning."""
    try:
        with open(path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
    except OSError as error:  # the attempt's own error matters more
        log.warning("could not append an attempt's record to %s: %s", path, error)


def record_killed(path: Path, holder: dict) -> None:
    """Append the record of an attempt that was killed (its lock's last words): SIGKILL, a lost node, a crash."""
    where = {k: holder.get(k) for k in ("snakemake_attempt", "host", "pid", "slurm_job_id", "slurm_restart_count",
                                        "cuda_visible_devices", "ranks") if holder.get(k) is not None}
    _append(path, {"outcome": "killed", "signal": None, "from": holder.get("start"),
                   "to": holder.get("saved") or holder.get("start"), "started": holder.get("since"),
                   "ended": holder.get("refreshed"), **where})
    log.warning("the previous attempt (process %s on %s, since %s) was killed without saving its end; it had saved "
                "up to epoch/step %s", holder.get("pid"), holder.get("host"), holder.get("since"),
                holder.get("saved") or holder.get("start"))


def read_attempts(path: Path) -> list[dict]:
    """The attempt records of a run (one JSON line per attempt, see AttemptRecord; a line a killed append cut short is skipped)."""
    return read_json_lines(path)


def made_progress(attempt: dict) -> bool:
    """Whether an attempt record shows progress: stopped or finished, or failed or killed after saving something new."""
    if attempt["outcome"] in ("failed", "killed"):
        return attempt["to"] != attempt["from"]
    return attempt["outcome"] in ("stopped", "finished")


def check_progressing(attempts: list[dict], retry: int, state_path: Path) -> None:
    """Refuse a retry (`retry` > 1: Snakemake's attempt number) after NO_PROGRESS_LIMIT attempts without progress.

    Such an attempt got its stop signal before finishing one training step or validation pass (the
    time before the signal is shorter than start-up plus one step), or failed before saving anything
    (an error that comes back every time): resubmitting it as it is only uses allocations. A first
    attempt (a new `snakemake` run, e.g. after the time limit was raised or the error fixed) always starts.
    """
    recent = attempts[-NO_PROGRESS_LIMIT:]
    if retry <= 1 or len(recent) < NO_PROGRESS_LIMIT or any(made_progress(a) for a in recent):
        return
    why = "; ".join(a.get("error") or ("killed before saving anything" if a["outcome"] == "killed" else
                                       f"stopped on {a['signal']} before finishing a single training step") for a in recent)
    raise TrainingStalled(
        f"the last {NO_PROGRESS_LIMIT} attempts of this run (state {state_path}) made no progress ({why}), so "
        "retrying it as it is cannot finish it: give the job more time before the signal (a larger "
        "resources.train.runtime or a smaller resources.train.save_before_limit in the config) or fix the "
        "error, then run snakemake again")


@contextlib.contextmanager
def attempt_log(path: Path, ranks: Ranks):
    """Also write this process's log to `path`, appended: the log of every attempt of a run, in order.

    Only rank 0 writes it; the other ranks of a data-parallel run log warnings and errors only.
    """
    root = logging.getLogger()
    if not ranks.main:
        level = root.level
        root.setLevel(logging.WARNING)
        try:
            yield
        finally:
            root.setLevel(level)
        return
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
