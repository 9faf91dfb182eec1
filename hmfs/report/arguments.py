"""Command-line groups the report commands share: the bootstrap behind the intervals, and the result files handed in."""

from __future__ import annotations

import argparse
from pathlib import Path

from hmfs.report.inputs import ResultFiles
from hmfs.report.uncertainty import Settings


def add_bootstrap_args(parser: argparse.ArgumentParser) -> None:
    """The bootstrap flags of `tables` and `claims` (config: uncertainty; hmfs.pipeline.argv.bootstrap_flags)."""
    group = parser.add_argument_group("bootstrap (the intervals)")
    group.add_argument("--resamples", type=int, default=Settings.resamples, help="bootstrap resamples over test episodes")
    group.add_argument("--bootstrap-seed", type=int, default=Settings.seed, help="fold k resamples with this seed + k")
    group.add_argument("--confidence", type=float, default=Settings.confidence, help="two-sided interval level")


def bootstrap_settings(args: argparse.Namespace) -> Settings:
    return Settings(args.resamples, args.bootstrap_seed, args.confidence)


def add_evaluation_args(parser: argparse.ArgumentParser, histories: bool = False) -> None:
    """The result files a rule hands the command (its input list), and whether every one it needs must be there."""
    group = parser.add_argument_group("result files (the rule's inputs)")
    group.add_argument("--evaluations", required=True, nargs="+", type=Path, metavar="FILE",
                       help="evaluation JSON files (<results>/<run>/eval_<k>shot.json): exactly those read")
    if histories:
        group.add_argument("--histories", nargs="*", default=[], type=Path, metavar="FILE",
                           help="training histories (<results>/<run>/history.jsonl) a convergence claim compares")
    group.add_argument("--require-all", action="store_true",
                       help="a needed file not handed in is an error naming it (the workflow's check that its rule "
                            "lists them all); without it, what it would show is left blank")


def result_files(args: argparse.Namespace) -> ResultFiles:
    """The handed files, each placed by its path (FileNotFoundError / ValueError naming a bad one)."""
    return ResultFiles(args.evaluations, getattr(args, "histories", []))
