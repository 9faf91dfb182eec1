"""`python -m hmfs convert-splits`: HSNet's split lists (COCO pickles read safely) into the SPLITS tree."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from hmfs.data.splits import convert_splits

log = logging.getLogger(__name__)


def run_convert_splits(args: argparse.Namespace) -> int:
    files = convert_splits(Path(args.hsnet_splits), Path(args.out), compress_coco=args.gzip)
    log.info("wrote %d split files under %s", len(files), Path(args.out))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert-splits",
        help="convert HSNet's split lists (COCO pickles read safely) into the SPLITS tree",
        description=convert_splits.__doc__,
    )
    parser.add_argument("--hsnet-splits", required=True, type=Path, help="HSNet's data/splits folder")
    parser.add_argument("--out", required=True, type=Path, help="SPLITS folder to write")
    parser.add_argument("--gzip", action="store_true", help="write COCO lists as fold{k}.json.gz")
    parser.set_defaults(func=run_convert_splits)
