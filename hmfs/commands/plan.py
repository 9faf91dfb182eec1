"""`python -m hmfs plan`: the estimated cost of a config's grid (episodes, FLOPs, GPU-hours, wall time on N GPUs) before any job."""

from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from pathlib import Path

from hmfs.pipeline.config_check import load_config
from hmfs.pipeline.plan import (
    DEFAULT_DEVICE_CLASS, DEVICE_CLASSES, bench_throughput, device_class_throughput, plan,
)
from hmfs.runtime import atomic_write_json

log = logging.getLogger(__name__)
DEFAULT_GPUS = 64
STOP_CASES_LABELS = {"cap": "every training to its epoch cap (an upper bound)",
                     "assumed": "ASSUMED: best by min_epochs, stopped patience later",
                     "earliest": "every training at the earliest stop (a lower bound)"}


def parse_gpus(value: str) -> int:
    """--gpus as a positive int; ValueError naming the flag otherwise."""
    try:
        gpus = int(value)
    except ValueError:
        raise ValueError(f"--gpus must be a whole number of GPUs (at least 1), got {value!r}") from None
    if gpus < 1:
        raise ValueError(f"--gpus must be at least 1, got {gpus}")
    return gpus


def _g(flops: float) -> str:
    return f"{flops / 1e9:,.1f}"


def _count(n: float) -> str:
    """1,234 / 62.0k / 126.1M: short enough for a column."""
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e4 else f"{n:,.0f}"


def _hours(hours: float) -> str:
    return f"{hours:,.1f}" if hours >= 10 else f"{hours:.3g}"


def format_plan(result: dict) -> str:
    """Per-group lines (jobs that share backbone, variant and benchmark), then the totals; every hour an estimate."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for job in result["jobs"]:
        groups[(job["kind"], job["group"])].append(job)
    lines = [f"ESTIMATES from an analytic FLOP model and {result['throughput']['source']}; FLOP-bound: data "
             "loading and small-batch latency are not counted.",
             f"{'kind':9s}{'group':48s}{'jobs':>5s}{'episodes/job':>14s}{'fwd GFLOP/ep':>14s}{'bwd GFLOP/ep':>14s}"
             f"{'est. GPU-h/job':>16s}{'est. GPU-h':>12s}"]
    for (kind, group), jobs in sorted(groups.items()):
        known = [j for j in jobs if j["gpu_hours"] is not None]
        counts = sorted({j["episodes"] for j in known})
        episodes = "?" if not counts else _count(counts[-1]) if len(counts) == 1 else \
            f"{_count(counts[0])}-{_count(counts[-1])}"
        group_hours = sum(j["gpu_hours"] for j in known)
        each = _hours(group_hours / len(known)) if known else "?"
        total = _hours(group_hours) if known else "?"
        forward = sum(j["forward_per_episode"] for j in jobs) / len(jobs)
        backward = sum(j["backward_per_episode"] for j in jobs) / len(jobs)
        lines.append(f"{kind:9s}{group:48s}{len(jobs):5d}{episodes:>14s}{_g(forward):>14s}{_g(backward):>14s}"
                     f"{each:>16s}{total:>12s}")
    notes = sorted({j["note"] for j in result["jobs"] if j["hours"] is None and j["note"]})
    totals = result["totals"]
    lines += [f"  unknown length, left out of the totals: {note}" for note in notes]
    lines += [
        "",
        f"trainings {totals['trainings']}, evaluations {totals['evaluations']}"
        + (f" ({totals['unknown_length']} of unknown length, left out)" if totals["unknown_length"] else ""),
        f"total FLOPs: {totals['flops']:.3g}",
        f"estimated GPU-hours with every training at its epoch cap: {_hours(totals['gpu_hours'])} (training {_hours(totals['gpu_hours_train'])}, "
        f"evaluation {_hours(totals['gpu_hours_evaluate'])})",
        f"estimated wall time on {result['gpus']} GPUs (greedy, longest ready job first; each evaluation after its "
        f"training): {_hours(totals['makespan_hours'])} h = {totals['makespan_hours'] / 24:.3g} days",
        f"estimated longest chain (a training and its longest evaluation, {totals['longest_chain_run']}): "
        f"{_hours(totals['longest_chain_hours'])} h",
        "",
        "by where the stopping rule (train.<benchmark>.patience, min_epochs) ends the trainings:",
        f"{'case':58s}{'est. GPU-h':>12s}{'est. wall h':>13s}{'days':>7s}{'chain h':>9s}",
    ]
    for case, label in STOP_CASES_LABELS.items():
        row = totals["by_stop"][case]
        lines.append(f"{label:58s}{_hours(row['gpu_hours']):>12s}{_hours(row['makespan_hours']):>13s}"
                     f"{row['makespan_hours'] / 24:7.2f}{_hours(row['longest_chain_hours']):>9s}")
    return "\n".join(lines)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("plan", help="estimated episodes, FLOPs and GPU-hours of the config's grid",
                                   description=__doc__)
    parser.add_argument("--config", type=Path, default=Path("config.yaml"), help="the workflow config (default: config.yaml)")
    parser.add_argument("--bench", type=Path, default=None,
                        help="a `python -m hmfs bench --out` JSON from the GPU the grid will run on (replaces --device-class)")
    parser.add_argument("--device-class", default=DEFAULT_DEVICE_CLASS,
                        help=f"assumed GPU class without --bench: {', '.join(f'{k} {v:g}' for k, v in DEVICE_CLASSES.items())} "
                             f"TFLOP/s (assumptions, default {DEFAULT_DEVICE_CLASS})")
    parser.add_argument("--gpus", default=str(DEFAULT_GPUS), help=f"GPUs the grid runs on at once (default {DEFAULT_GPUS})")
    parser.add_argument("--workdir", type=Path, default=Path("."),
                        help="the folder the workflow runs in, which the config's paths are relative to (default: here)")
    parser.add_argument("--json", type=Path, default=None, help="also write the plan as JSON")
    parser.set_defaults(func=run_plan)


def run_plan(args: argparse.Namespace) -> int:
    gpus = parse_gpus(args.gpus)
    config = load_config(args.config)
    if args.bench is not None:
        if not args.bench.is_file():
            raise FileNotFoundError(f"--bench file not found: {args.bench}")
        try:
            report = json.loads(args.bench.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"--bench {args.bench}: not JSON ({error})") from None
        rate = bench_throughput(report, str(args.bench), config["train"]["precision"])
    else:
        rate = device_class_throughput(args.device_class)
    result = plan(config, rate, gpus, root=args.workdir)
    print(format_plan(result))
    if args.json:
        atomic_write_json(args.json, result)
    return 0
