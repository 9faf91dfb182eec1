"""`python -m hmfs bench`: per-stage milliseconds of 1-shot and 5-shot evaluation and of a training step."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from hmfs.model import BACKBONES, MASKINGS
from hmfs.names import PRECISIONS
from hmfs.runtime import atomic_write_json
from hmfs.speed import bench

log = logging.getLogger(__name__)


def format_table(report: dict) -> str:
    """A plain-text table: one row per measured pass, one column per stage."""
    columns = ["backbone", "correlation", "learner", "total"]
    lines = [f"{report['backbone']} {report['masking']} {report['img_size']}x{report['img_size']} "
             f"batch {report['batch_size']} on {report['device']} {report.get('precision', 'fp32')} "
             f"(median ms of {report['repeats']})",
             f"{'pass':40s}" + "".join(f"{c:>13s}" for c in columns)]
    for name, stages in report["results"].items():
        row = f"{name:40s}" + "".join(f"{stages[c]:13.1f}" if c in stages else f"{'':>13s}" for c in columns)
        lines.append(row)
    return "\n".join(lines)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="per-stage timings (backbone, correlation, learner) on this device")
    parser.add_argument("--backbone", default="resnet50", choices=BACKBONES)
    parser.add_argument("--masking", default="hm", choices=MASKINGS)
    parser.add_argument("--img-size", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=1, help="episodes per evaluation call")
    parser.add_argument("--train-batch-size", type=int, default=None, help="episodes per training step (default: --batch-size)")
    parser.add_argument("--shot", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=None, help="write the report as JSON")
    parser.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    report = bench(args.backbone, args.masking, args.img_size, args.batch_size, args.shot, args.device, args.precision,
                   args.repeats, args.warmup, args.train_batch_size)
    print(format_table(report))
    if args.out:
        atomic_write_json(args.out, report)
    return 0
