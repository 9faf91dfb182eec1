"""Command line of hmfs: one subcommand per module, each registered by its `add_parser`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from hmfs.files import DiskFull

# Subcommand -> the module that defines `add_parser(subparsers)`, which adds it and sets
# `func=<callable(args) -> int>` as the parser default. Only the module of the command being run
# is imported, so commands without torch (tables, figures, report) start in well under a second.
COMMANDS = {
    "generate": "hmfs.commands.generate",
    "prepare": "hmfs.commands.prepare",
    "verify-data": "hmfs.commands.verify_data",
    "convert-splits": "hmfs.commands.convert_splits",
    "pretrain": "hmfs.commands.pretrain",
    "train": "hmfs.commands.train",
    "evaluate": "hmfs.commands.evaluate",
    "bench": "hmfs.commands.bench",
    "plan": "hmfs.commands.plan",
    "status": "hmfs.commands.status",
    "gpu-check": "hmfs.commands.gpu_check",
    "fetch-weights": "hmfs.commands.fetch_weights",
    "check-released": "hmfs.commands.check_released",
    "fetch": "hmfs.commands.download",
    "unpack": "hmfs.commands.download",
    "tables": "hmfs.commands.tables",
    "claims": "hmfs.commands.claims",
    "forest": "hmfs.commands.forest",
    "figures": "hmfs.commands.figures",
}


def _requested_command(argv: list[str]) -> str | None:
    """The first argument that names a subcommand (global options come before it)."""
    for arg in argv:
        if arg in COMMANDS:
            return arg
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hmfs", description=__doc__)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--threads", dest="torch_threads", type=int, default=0,
                        help="CPU threads for torch (0: torch's default); workflow rules pass their `threads`")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    requested = _requested_command(argv or [])
    modules = dict.fromkeys(COMMANDS.values()) if requested is None else {COMMANDS[requested]: None}
    for module_name in modules:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.torch_threads < 0:
        logging.getLogger("hmfs").error("--threads must be >= 0, got %d", args.torch_threads)
        return 2
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as error:
        # Bad user input: one clear line, no traceback.
        logging.getLogger("hmfs").error("%s", error)
        return 2
    except DiskFull as error:  # the file, the bytes needed and free
        logging.getLogger("hmfs").error("%s", error)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
