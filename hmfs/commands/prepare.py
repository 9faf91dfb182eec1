"""`python -m hmfs prepare`: turn a raw PASCAL VOC2012 + SBD, COCO 2014 or FSS-1000 tree into HSNet's layout and splits.

The layout and the rules are in hmfs.data.prepare.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hmfs.data import BENCHMARKS
from hmfs.data.prepare import prepare_coco, prepare_fss, prepare_pascal
from hmfs.data.prepare.common import read_json, require
from hmfs.runtime import atomic_write_bytes


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="turn a raw benchmark tree into HSNet's data layout and split lists",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--benchmark", required=True, choices=BENCHMARKS)
    parser.add_argument("--raw", type=Path, required=True,
                        help="holds VOCdevkit/ + benchmark_RELEASE/, coco/ or FSS-1000/")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="DATA folder to write")
    parser.add_argument("--splits-out", type=Path, required=True, help="SPLITS folder to write")
    parser.add_argument("--summary", type=Path, default=None,
                        help="also write the counts as JSON here, last (the workflow's marker of a finished prepare)")
    parser.add_argument("--threads", type=int, default=1,
                        help="worker processes for COCO's masks (the workflow passes the job's threads)")
    parser.add_argument("--asset-records", type=Path, nargs="+", default=[], metavar="JSON",
                        help="records of the verified downloads this tree came from (`unpack --summary`), copied "
                             "into --summary as the data's provenance")
    parser.set_defaults(func=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    raw = args.raw
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    records = [read_json(require(path, "an asset record written by `hmfs unpack --summary`"))
               for path in args.asset_records]
    if args.benchmark == "pascal":
        voc, sbd = raw / "VOCdevkit" / "VOC2012", raw / "benchmark_RELEASE" / "dataset"
        summary = prepare_pascal(voc, sbd, args.out, args.splits_out)
    elif args.benchmark == "coco":
        summary = prepare_coco(raw / "coco", args.out, args.splits_out, threads=args.threads)
    else:
        summary = prepare_fss(raw / "FSS-1000", args.out, args.splits_out)
    if records:
        summary["assets"] = records
    if args.summary:
        text = json.dumps({"benchmark": args.benchmark, "raw": str(raw), **summary}, indent=2) + "\n"
        atomic_write_bytes(args.summary, text.encode(), fsync=False)
    return 0
