"""Command line of hmfs: one subcommand per module, each registered by its `add_parser`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

# Subcommand -> the module that defines `add_parser(subparsers)`, which adds it and sets
# `func=<callable(args) -> int>` as the parser default. Only the module of the command being run
# is imported, so commands without torch (tables, figures, report) start in well under a second.
COMMANDS = {
    "generate": "hmfs.synthetic",
    "prepare": "hmfs.commands.prepare",
    "verify-data": "hmfs.commands.verify_data",
    "convert-splits": "hmfs.data.splits",
    "pretrain": "hmfs.commands.pretrain",
    "train": "hmfs.commands.train",
    "evaluate": "hmfs.commands.evaluate",
    "bench": "hmfs.commands.bench",
    "fetch-weights": "hmfs.commands.fetch_weights",
    "check-released": "hmfs.commands.check_released",
    "fetch": "hmfs.commands.download",
    "unpack": "hmfs.commands.download",
    "tables": "hmfs.report.tables",
    "claims": "hmfs.report.claims",
    "forest": "hmfs.report.forest",
    "figures": "hmfs.report.figures",
}


def add_common_model_args(parser: argparse.ArgumentParser, backbone_from_checkpoint: bool = False) -> None:
    """Flags shared by train and evaluate: data, backbone, masking, device.

    `backbone_from_checkpoint` adds the third source of backbone weights that evaluate accepts: the
    `backbone.*` weights inside a released HSNet / HM checkpoint.
    """
    from hmfs.data import BENCHMARKS
    from hmfs.model import BACKBONES, MASKINGS

    parser.add_argument("--benchmark", required=True, choices=BENCHMARKS)
    parser.add_argument("--data-root", required=True, type=Path, help="folder holding VOC2012/, COCO2014/ or FSS-1000/")
    parser.add_argument("--splits-dir", type=Path, default=None, help="split lists (default: HSNet's, shipped with hmfs)")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--backbone", required=True, choices=BACKBONES)
    parser.add_argument("--masking", required=True, choices=MASKINGS, help="fm (HSNet), im, hm (HMFS)")
    weights = parser.add_mutually_exclusive_group(required=True)
    weights.add_argument("--backbone-weights", type=Path, help="local ResNet state dict (e.g. torchvision's ImageNet file)")
    weights.add_argument("--random-backbone", action="store_true", help="random frozen backbone (tests, ablations)")
    if backbone_from_checkpoint:
        weights.add_argument("--backbone-from-checkpoint", action="store_true",
                             help="the backbone.* weights stored in --checkpoint (released HSNet / HM files)")
    parser.add_argument("--img-size", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (measure its mIoU against fp32 first)")


def resolve_splits_dir(splits_dir: Path | None) -> Path:
    """The split lists: `splits_dir`, or HSNet's lists shipped with hmfs."""
    if splits_dir is not None:
        return splits_dir
    from hmfs.data.splits import packaged_splits_dir

    return packaged_splits_dir()


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


if __name__ == "__main__":
    raise SystemExit(main())
