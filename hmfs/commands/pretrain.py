"""`python -m hmfs pretrain`: a small ResNet trained to classify synthetic looks no benchmark uses (ImageNet's stand-in)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hmfs.model.backbone import BACKBONES
from hmfs.synthetic.backgrounds import BACKGROUNDS
from hmfs.synthetic.pretraining import PretrainConfig, pretrain


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "pretrain", help="pretrain a small backbone on synthetic classes disjoint from the benchmarks",
        description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--backbone", required=True, choices=BACKBONES)
    parser.add_argument("--out", required=True, type=Path, help="weights file (.pt); a .json summary goes beside it")
    parser.add_argument("--exclude-classes-of", nargs="*", type=Path, default=[],
                        help="<benchmark>_summary.json files of `generate`: their class looks are never pretraining classes")
    parser.add_argument("--num-classes", type=int, default=64)
    parser.add_argument("--images-per-class", type=int, default=40)
    parser.add_argument("--val-images-per-class", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05, help="peak learning rate (one-cycle SGD)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--background", choices=BACKGROUNDS, default="clutter", help="as the benchmarks' (generate --background)")
    parser.add_argument("--masked-share", type=float, default=0.0,
                        help="share of images with everything but the object in the mean colour (what input masking shows)")
    parser.set_defaults(func=run_pretrain)


def run_pretrain(args: argparse.Namespace) -> int:
    pretrain(PretrainConfig(
        backbone=args.backbone, out=str(args.out), exclude_summaries=tuple(str(p) for p in args.exclude_classes_of),
        num_classes=args.num_classes, images_per_class=args.images_per_class,
        val_images_per_class=args.val_images_per_class, image_size=args.image_size, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, background=args.background,
        masked_share=args.masked_share,
    ))
    return 0
