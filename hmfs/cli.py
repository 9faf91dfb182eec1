"""Command line of hmfs: one subcommand per module, each registered by its `add_parser`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Each module named here defines `add_parser(subparsers)`, which adds its subcommand(s) and sets
# `func=<callable(args) -> int>` as the parser default. Modules are imported lazily so that
# `python -m hmfs --help` stays fast.
COMMAND_MODULES = (
    "hmfs.synthetic",  # generate
    "hmfs.prepare",  # prepare
    "hmfs.data.splits",  # convert-splits
    "hmfs.train",  # train
    "hmfs.evaluate",  # evaluate
    "hmfs.bench",  # bench
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hmfs", description=__doc__)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as error:
        # Bad user input: one clear line, no traceback.
        logging.getLogger("hmfs").error("%s", error)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
