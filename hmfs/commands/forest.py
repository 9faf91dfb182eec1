"""`python -m hmfs forest`: the claims' forest plot (the report's summary figure), from the claims table's JSON."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from hmfs.report.forest import plot_claims_forest
from hmfs.runtime import atomic_write_json

log = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("forest", help="the claims' forest plot, from the claims table's JSON",
                                   description=__doc__)
    parser.add_argument("--claims", required=True, type=Path, help="claims.json written by `python -m hmfs claims`")
    parser.add_argument("--out", required=True, type=Path, help="PNG file; a .json of the plotted rows goes beside it")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.claims.is_file():
        raise FileNotFoundError(f"claims numbers not found: {args.claims} (written by `python -m hmfs claims`)")
    drawn = plot_claims_forest(json.loads(args.claims.read_text()), args.out)
    atomic_write_json(args.out.with_suffix(".json"), drawn)
    log.info("wrote %s (%d claims)", args.out, len(drawn["rows"]))
    return 0
