"""`python -m hmfs generate`: write deterministic small stand-ins for the three benchmarks in their raw download formats."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from hmfs.data import BENCHMARKS
from hmfs.synthetic import BACKGROUNDS, generate_coco, generate_fss, generate_pascal

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate", help="write small synthetic benchmarks in the raw download formats",
        description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="raw data folder to write")
    parser.add_argument("--benchmark", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS),
                        help="benchmarks to write")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="same seed and counts give the same bytes")
    parser.add_argument("--image-size", type=int, default=128, help="images are 75-125 %% of it per side")
    parser.add_argument("--pascal-train", type=int, default=15, help="train_aug images per class")
    parser.add_argument("--pascal-val", type=int, default=8, help="VOC val images per class")
    parser.add_argument("--coco-train", type=int, default=400, help="train2014 images")
    parser.add_argument("--coco-val", type=int, default=200, help="val2014 images")
    parser.add_argument("--min-images-per-class", type=int, default=6, help="COCO: per class and split")
    parser.add_argument("--fss-classes", type=int, default=50, help="split 520:240:240 like FSS-1000")
    parser.add_argument("--background", choices=BACKGROUNDS, default="clutter",
                        help="clutter: procedural only; photos: crops of scikit-image's real photos for most images")
    parser.set_defaults(func=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    if args.image_size < 32:
        raise ValueError(f"--image-size {args.image_size} is too small; use >= 32")
    common = {"seed": args.seed, "image_size": args.image_size, "background": args.background}
    for benchmark in args.benchmark:
        if benchmark == "pascal":
            summary = generate_pascal(args.out, train_per_class=args.pascal_train,
                                      val_per_class=args.pascal_val, **common)  # fmt: skip
        elif benchmark == "coco":
            summary = generate_coco(args.out, train_images=args.coco_train, val_images=args.coco_val,
                                    min_images_per_class=args.min_images_per_class, **common)  # fmt: skip
        else:
            summary = generate_fss(args.out, num_classes=args.fss_classes, **common)
        # Counts only: the per-class tables stay in <benchmark>_summary.json.
        keep = ("train", "val", "splits")
        counts = {k: v for k, v in summary.items() if not isinstance(v, dict) or k in keep}
        log.info("generated %s under %s: %s", benchmark, args.out, json.dumps(counts))
    return 0
