"""Argument groups and helpers that several commands share (below the commands, torch-free)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hmfs.data.splits import packaged_splits_dir
from hmfs.names import BACKBONES, BENCHMARKS, MASKINGS, PRECISIONS


def add_common_model_args(parser: argparse.ArgumentParser, backbone_from_checkpoint: bool = False) -> None:
    """Flags shared by train and evaluate: data, backbone, masking, device.

    `backbone_from_checkpoint` adds the third source of backbone weights that evaluate accepts: the
    `backbone.*` weights inside a released HSNet / HM checkpoint.
    """
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
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="fp32, or bf16 / fp16 autocast (docs/speed.md, \"Precision\": measured on the stand-in)")


def resolve_splits_dir(splits_dir: Path | None) -> Path:
    """The split lists: `splits_dir`, or HSNet's lists shipped with hmfs."""
    return splits_dir if splits_dir is not None else packaged_splits_dir()
