"""`python -m hmfs status`: where the configured grid stands (each training's state, epoch, best mIoU, time left), from files only."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

from hmfs.pipeline.config_check import load_config
from hmfs.pipeline.status import STATES, grid_status
from hmfs.training.run_lock import STALE_AFTER_SECONDS


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _hours(bounds: list[float] | None) -> str:
    if not bounds:
        return "-"
    low, high = bounds

    def one(hours: float) -> str:
        if hours < 1 / 60:
            return f"{hours * 3600:.0f}s"
        return f"{hours * 60:.0f}m" if hours < 1 else f"{hours:.1f}h" if hours < 48 else f"{hours / 24:.1f}d"
    return one(low) if abs(high - low) < 1e-9 else f"{one(low)}-{one(high)}"


def _attempts(outcomes: list[str]) -> str:
    if not outcomes:
        return "-"
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return f"{len(outcomes)}: " + ", ".join(f"{n} {outcome}" for outcome, n in counts.items())


def format_status(status: dict) -> str:
    """A table of the runs (one line each, then what is wrong with those that stalled or failed), and the totals."""
    when = datetime.datetime.fromtimestamp(status["time"]).astimezone().isoformat(timespec="seconds")
    lines = [f"grid in {status['output_dir']} at {when}",
             f"{'run':36s} {'state':8s} {'epoch':>11s} {'step':>12s} {'best val (ep)':>14s} {'last':>6s} "
             f"{'attempts':24s} {'job':>8s} {'ep/s':>6s} {'left*':>11s}"]
    notes = []
    for run in status["runs"]:
        epoch = f"{run['epochs_done']}/{run['epochs']}"
        step = "-"
        if run["state"] == "running" and run["phase"]:  # train 12/25, val 3/12, or between epochs
            step = f"{run['phase']} {run['step']}/{run['steps']}" if run["phase"] in ("train", "val") else "new epoch"
        best = "-" if run["best_val_miou"] is None else f"{run['best_val_miou']:.1f} ({run['best_epoch']})"
        lines.append(f"{run['run']:36s} {run['state']:8s} {epoch:>11s} {step:>12s} {best:>14s} "
                     f"{_number(run['last_val_miou']):>6s} {_attempts(run['attempts']):24s} {run['slurm_job_id'] or '-':>8s} "
                     f"{_number(run['episodes_per_second']):>6s} {_hours(run['hours_left']):>11s}")
        if run["state"] in ("stalled", "failed", "stopped") and run["detail"]:
            notes.append(f"  {run['run']}: {run['state']}: {run['detail']}")
    counts = status["trainings"]
    lines += notes
    lines += ["", "trainings: " + ", ".join(f"{counts[s]} {s}" for s in STATES if counts[s]) + f" (of {len(status['runs'])})",
              f"evaluations: {status['evaluations']['done']} of {status['evaluations']['total']} done; "
              f"tables: {status['tables']['done']} of {status['tables']['total']}",
              "* left: time to the stopping rule's end if no epoch beats the best so far - to the epoch cap, "
              "at the median seconds per epoch of the last 5 (an estimate)"]
    return "\n".join(lines)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("status", help="where the configured grid stands: each training's state, epoch, "
                                                  "best mIoU and time left (reads files only)", description=__doc__)
    parser.add_argument("--config", type=Path, default=Path("config.yaml"), help="the workflow config (default: config.yaml)")
    parser.add_argument("--workdir", type=Path, default=Path("."),
                        help="the folder the workflow runs in, which the config's paths are relative to (default: here)")
    parser.add_argument("--json", action="store_true", help="print the status as JSON (for scripts)")
    parser.add_argument("--watch", type=float, default=None, metavar="SECONDS",
                        help="print the status again every SECONDS until interrupted")
    parser.add_argument("--stalled-after", type=float, default=STALE_AFTER_SECONDS / 60, metavar="MINUTES",
                        help=f"a training with no progress for this long is 'stalled' (default {STALE_AFTER_SECONDS // 60})")
    parser.set_defaults(func=run_status)


def run_status(args: argparse.Namespace) -> int:
    if args.watch is not None and args.watch <= 0:
        raise ValueError(f"--watch must be a positive number of seconds, got {args.watch}")
    if args.stalled_after <= 0:
        raise ValueError(f"--stalled-after must be a positive number of minutes, got {args.stalled_after}")
    config = load_config(args.config)
    while True:
        status = grid_status(config, args.workdir, stalled_after=args.stalled_after * 60)
        text = json.dumps(status, indent=2) if args.json else format_status(status)
        if args.watch is not None and sys.stdout.isatty():
            print("\033[2J\033[H", end="")  # clear the terminal between refreshes
        print(text, flush=True)
        if args.watch is None:
            return 0
        try:
            time.sleep(args.watch)
        except KeyboardInterrupt:
            return 0
