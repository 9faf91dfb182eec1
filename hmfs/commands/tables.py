"""`python -m hmfs tables`: one of the paper's Tables 1-5 from the evaluation files its rule hands in, as CSV, Markdown, LaTeX and HTML."""

from __future__ import annotations

import argparse
from pathlib import Path

from hmfs.names import BENCHMARKS, NUM_FOLDS, TABLES
from hmfs.report.arguments import add_bootstrap_args, add_evaluation_args, bootstrap_settings, result_files
from hmfs.report.table_runs import GridTable, parse_rows
from hmfs.report.table_specs import table_spec
from hmfs.report.tables import make_table


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("tables", help="regenerate one of the paper's tables from evaluation JSON files",
                                   description=__doc__)
    parser.add_argument("--table", required=True, choices=TABLES)
    parser.add_argument("--benchmark", required=True, choices=BENCHMARKS, help="the training benchmark")
    parser.add_argument("--test-benchmark", choices=BENCHMARKS, default=None,
                        help="the benchmark tested on when it differs (Table 4: pascal)")
    parser.add_argument("--backbones", required=True, nargs="+")
    parser.add_argument("--folds", type=int, nargs="+", default=list(range(NUM_FOLDS)))
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="training seeds of the trained rows (cells are their mean); runs live in <fold>/seed<k>/")
    add_bootstrap_args(parser)
    parser.add_argument("--rows", required=True, nargs="+",
                        help="NAME=VARIANT[@released] per reproduced row, e.g. HSNet=fm 'HMFS*=hm_aug' HSNet=fm@released")
    add_evaluation_args(parser)
    parser.add_argument("--published", type=Path, default=None, help="published_results.yaml (real benchmarks)")
    parser.add_argument("--synthetic", action="store_true", help="synthetic benchmark: no paper numbers, a plain note")
    parser.add_argument("--out-prefix", required=True, type=Path, help="writes PREFIX.csv, .md, .tex and .html")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    table = GridTable(args.table, args.benchmark, args.test_benchmark or args.benchmark, tuple(args.seeds),
                      tuple(parse_rows(args.rows)))
    make_table(table_spec(args.table), table, result_files(args), args.backbones, args.folds, args.shots,
               bootstrap_settings(args), args.out_prefix, published=args.published, synthetic=args.synthetic,
               require_all=args.require_all)
    return 0
