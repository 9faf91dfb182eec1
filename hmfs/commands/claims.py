"""`python -m hmfs claims`: the paper's claims (hmfs/paper/claims.yaml) checked one by one on the files its rule hands in."""

from __future__ import annotations

import argparse
from pathlib import Path

from hmfs.names import NUM_FOLDS
from hmfs.report.arguments import add_bootstrap_args, add_evaluation_args, bootstrap_settings, result_files
from hmfs.report.claims import make_claims
from hmfs.report.table_runs import parse_grid_table


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("claims", help="check the paper's claims one by one (intervals and verdicts)",
                                   description=__doc__)
    parser.add_argument("--claims", required=True, type=Path, help="hmfs/paper/claims.yaml")
    parser.add_argument("--published", required=True, type=Path, help="hmfs/paper/published_results.yaml")
    parser.add_argument("--backbones", required=True, nargs="+")
    parser.add_argument("--folds", type=int, nargs="+", default=list(range(NUM_FOLDS)))
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--table", required=True, nargs="+", action="append",
                        metavar="TABLE BENCHMARK TEST_BENCHMARK SEEDS ROW",
                        help="one table of the grid: e.g. --table table5 coco coco 0,1 FM=fm IM=im HM=hm")
    add_bootstrap_args(parser)
    add_evaluation_args(parser, histories=True)
    parser.add_argument("--synthetic", action="store_true", help="synthetic benchmark: verdicts about the stand-in")
    parser.add_argument("--out-prefix", required=True, type=Path, help="writes PREFIX.csv, .md, .tex, .html and .json")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    tables = {table.name: table for table in map(parse_grid_table, args.table)}
    make_claims(args.claims, args.published, tables, result_files(args), args.backbones, args.folds, args.shots,
                bootstrap_settings(args), args.out_prefix, synthetic=args.synthetic, require_all=args.require_all)
    return 0
