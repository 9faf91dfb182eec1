"""A COCO 2014 tree of realistic size for measuring `prepare` (time and peak memory); not run by pytest.

The annotation files have COCO's scale and shape: train 82,783 images and about 605,000
annotations, val 40,504 and about 292,000 (the real counts), polygons of 6-60 vertices with
2-decimal coordinates (some objects in several parts), about 1.5 % crowd regions as uncompressed
RLE (counts as a list, as COCO stores them), object areas from tiny to whole-image, and the image
sizes COCO uses most. `prepare` only reads the images' headers (their sizes), so every image is a
symbolic link to one small JPEG of its size.

    python tools/coco_scale.py OUT [--train-images N] [--val-images N] [--seed S]
    /usr/bin/time -v python -m hmfs prepare --benchmark coco --raw OUT --out OUT/data --splits-out OUT/splits
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from hmfs.synthetic import COCO_CATEGORIES

# (width, height) of COCO 2014 images, most frequent first, with rough shares.
SIZES = ((640, 480), (640, 427), (480, 640), (640, 426), (500, 375), (640, 428), (427, 640), (640, 424),
         (375, 500), (640, 512), (612, 612), (640, 360))
SIZE_SHARE = np.array([30, 16, 10, 6, 5, 4, 4, 3, 3, 2, 2, 2], float)
ANNOTATIONS_PER_IMAGE = 7.3  # COCO 2014 train: 604,907 / 82,783
CROWD_SHARE = 0.015
REAL_COUNTS = {"train": (82_783, 604_907), "val": (40_504, 291_875)}


def _polygon(rng: np.random.Generator, width: int, height: int) -> list[list[float]]:
    """One instance as 1-3 star-shaped parts, COCO's flat [x0, y0, x1, y1, ...] lists."""
    # Object sizes: COCO has ~41 % small (< 32^2 px), ~34 % medium, ~24 % large.
    radius = float(np.exp(rng.uniform(np.log(3), np.log(min(width, height) / 2))))
    cx, cy = rng.uniform(0, width), rng.uniform(0, height)
    parts = []
    for _ in range(1 if rng.random() < 0.9 else int(rng.integers(2, 4))):
        n = int(np.clip(rng.gamma(2.5, 8), 6, 60))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        r = radius * rng.uniform(0.4, 1.0, n)
        xs = np.clip(cx + r * np.cos(angles), 0, width - 1)
        ys = np.clip(cy + r * np.sin(angles), 0, height - 1)
        parts.append([round(float(v), 2) for xy in zip(xs, ys) for v in xy])
        cx, cy = cx + rng.normal(0, radius), cy + rng.normal(0, radius)
    return parts


def _crowd_rle(rng: np.random.Generator, width: int, height: int) -> dict:
    """An uncompressed RLE (column-major run lengths, starting with background) of a random blob."""
    mask = np.zeros((height, width), bool)
    for _ in range(int(rng.integers(3, 12))):
        x0, y0 = int(rng.integers(0, width - 20)), int(rng.integers(0, height - 20))
        mask[y0:y0 + int(rng.integers(8, 120)), x0:x0 + int(rng.integers(8, 120))] = True
    flat = mask.flatten(order="F")
    edges = np.flatnonzero(np.diff(flat)) + 1
    counts = np.diff(np.concatenate(([0], edges, [flat.size]))).tolist()
    if flat[0]:
        counts = [0] + counts
    return {"counts": counts, "size": [height, width]}


def generate(out: Path, split: str, n_images: int, seed: int = 0, n_annotations: int | None = None) -> dict:
    """Write `out/coco/<split>2014/` (links) and `out/coco/annotations/instances_<split>2014.json`."""
    rng = np.random.default_rng([seed, len(split)])
    folder = out / "coco" / f"{split}2014"
    folder.mkdir(parents=True, exist_ok=True)
    templates = out / "coco" / "templates"
    templates.mkdir(exist_ok=True)
    for width, height in SIZES:
        path = templates / f"{width}x{height}.jpg"
        if not path.exists():
            Image.new("RGB", (width, height), (120, 110, 100)).save(path, quality=50)
    per_image = ANNOTATIONS_PER_IMAGE if n_annotations is None else n_annotations / n_images
    category_ids = [cid for cid, _, _ in COCO_CATEGORIES]
    images, annotations = [], []
    sizes = rng.choice(len(SIZES), size=n_images, p=SIZE_SHARE / SIZE_SHARE.sum())
    counts = rng.poisson(per_image, n_images)
    for index in range(n_images):
        image_id = 100_000 + index
        width, height = SIZES[sizes[index]]
        file_name = f"COCO_{split}2014_{image_id:012d}.jpg"
        link = folder / file_name
        if not link.is_symlink():
            os.symlink(templates / f"{width}x{height}.jpg", link)
        images.append({"license": 1, "file_name": file_name, "coco_url": "", "height": height, "width": width,
                       "date_captured": "2013-11-14 16:28:13", "flickr_url": "", "id": image_id})
        for _ in range(int(counts[index])):
            crowd = rng.random() < CROWD_SHARE
            segmentation = _crowd_rle(rng, width, height) if crowd else _polygon(rng, width, height)
            annotations.append({"segmentation": segmentation, "area": float(rng.uniform(10, width * height / 4)),
                                "iscrowd": int(crowd), "image_id": image_id,
                                "bbox": [round(float(v), 2) for v in rng.uniform(0, 300, 4)],
                                "category_id": int(rng.choice(category_ids)), "id": len(annotations) + 1})
    document = {"info": {"description": "hmfs COCO-scale stand-in"}, "images": images, "licenses": [],
                "annotations": annotations,
                "categories": [{"supercategory": sup, "id": cid, "name": name} for cid, name, sup in COCO_CATEGORIES]}
    path = out / "coco" / "annotations" / f"instances_{split}2014.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, separators=(",", ":")))
    return {"images": len(images), "annotations": len(annotations),
            "crowd": sum(a["iscrowd"] for a in annotations), "json_bytes": path.stat().st_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--train-images", type=int, default=REAL_COUNTS["train"][0])
    parser.add_argument("--val-images", type=int, default=REAL_COUNTS["val"][0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for split, n in (("train", args.train_images), ("val", args.val_images)):
        # Annotations scale with the images at COCO's own ratio of the split.
        real_images, real_annotations = REAL_COUNTS[split]
        print(split, generate(args.out, split, n, args.seed, round(n * real_annotations / real_images)))


if __name__ == "__main__":
    main()
