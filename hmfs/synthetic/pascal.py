"""The synthetic PASCAL VOC2012 + SBD stand-in: a VOC devkit and an SBD release in their download formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from hmfs.runtime import atomic_write_bytes
from hmfs.synthetic.backgrounds import backdrop_photos
from hmfs.synthetic.formats import (VOC_CLASSES, encode_jpeg, encode_mat, encode_png, sbd_struct, voc_boundary_band,
                                    voc_palette, write_lines)
from hmfs.synthetic.layout import PASCAL_STREAM, log_progress, random_image_size, scene_with_visible
from hmfs.synthetic.scenes import Appearance, ObjectSpec, class_map, distractors, draw_appearances


def _pascal_specs(rng: np.random.Generator, primary: int, classes: Sequence[Appearance]) -> list[ObjectSpec]:
    """1-3 labelled objects (the first of class `primary`, the others the same or another class,
    as VOC images often hold a second class) plus 0-2 unlabelled distractors."""
    labels = [primary]
    for _ in range(int(rng.integers(0, 3))):
        labels.append(primary if rng.random() < 0.5 else int(rng.integers(len(classes))))
    return [ObjectSpec(classes[c], c) for c in labels] + distractors(rng)


def generate_pascal(
    out: Path, *, seed: int = 0, image_size: int = 128, train_per_class: int = 15, val_per_class: int = 8,
    background: str = "clutter",
) -> dict[str, Any]:
    """Write a VOC2012 devkit and an SBD release under `out` (the notes at the top of
    hmfs.data.prepare say how they combine) and `out/pascal_summary.json`; returns the summary.

    train_per_class: train_aug images per class as the image's main class; val_per_class: the
    same for VOC val. As in reality, part of train_aug is VOC train (half of it also in SBD), the
    rest SBD only, and a quarter of VOC val is also listed in SBD (which prepare must drop from
    training). VOC masks carry the 255 band, SBD masks do not.
    """
    if train_per_class < 1 or val_per_class < 1:
        raise ValueError(f"images per class must be >= 1, got train {train_per_class}, val {val_per_class}")
    out = Path(out)
    photos = backdrop_photos(background)
    rng = np.random.default_rng([seed, PASCAL_STREAM])
    classes = draw_appearances(rng, len(VOC_CLASSES))
    n_train, n_val = len(VOC_CLASSES) * train_per_class, len(VOC_CLASSES) * val_per_class
    codes = rng.choice(5 * 100_000, size=n_train + n_val, replace=False)  # years 2007..2011
    ids = [f"{2007 + code // 100_000}_{code % 100_000:06d}" for code in codes]
    train_ids, val_ids = ids[:n_train], ids[n_train:]
    voc_train, sbd_train, sbd_val = [], [], []
    for image_id in train_ids:
        draw = rng.random()
        if draw < 0.3:
            voc_train.append(image_id)
        if draw < 0.15 or draw >= 0.3:
            (sbd_train if rng.random() < 0.75 else sbd_val).append(image_id)
    for image_id in val_ids:
        if rng.random() < 0.25:
            (sbd_train if rng.random() < 0.75 else sbd_val).append(image_id)
    voc_seg = set(voc_train) | set(val_ids)
    sbd = set(sbd_train) | set(sbd_val)

    voc = out / "VOCdevkit" / "VOC2012"
    sbd_root = out / "benchmark_RELEASE" / "dataset"
    for folder in (voc / "JPEGImages", voc / "SegmentationClass", voc / "ImageSets" / "Segmentation",
                   sbd_root / "img", sbd_root / "cls"):  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
    palette = voc_palette()
    per_class = {"train_aug": np.zeros(len(VOC_CLASSES), int), "val": np.zeros(len(VOC_CLASSES), int)}
    for split, split_ids, stream in (("train_aug", train_ids, 0), ("val", val_ids, 1)):
        for index, image_id in enumerate(split_ids):
            image_rng = np.random.default_rng([seed, PASCAL_STREAM, stream, index])
            height, width = random_image_size(image_rng, image_size)
            primary = index % len(VOC_CLASSES)
            specs = _pascal_specs(image_rng, primary, classes)
            required = sorted({spec.label for spec in specs if spec.label >= 0})
            image, instances, owner = scene_with_visible(
                image_rng, height, width, specs, required, band=image_id in voc_seg, photos=photos
            )
            label = class_map(owner, instances)  # (H, W) uint8, 0..20
            banded = voc_boundary_band(label)
            jpeg = encode_jpeg(image)
            atomic_write_bytes(voc / "JPEGImages" / f"{image_id}.jpg", jpeg, fsync=False)
            if image_id in voc_seg:
                png = Image.fromarray(banded)
                png.putpalette(palette)  # turns the "L" image into a "P" one
                atomic_write_bytes(voc / "SegmentationClass" / f"{image_id}.png", encode_png(png), fsync=False)
            if image_id in sbd:
                atomic_write_bytes(sbd_root / "img" / f"{image_id}.jpg", jpeg, fsync=False)
                mat = encode_mat({"GTcls": sbd_struct(label, banded)})
                atomic_write_bytes(sbd_root / "cls" / f"{image_id}.mat", mat, fsync=False)
            used = banded if image_id in voc_seg else label  # what prepare will read for this image
            present = np.unique(used)
            per_class[split][present[(present >= 1) & (present <= 20)] - 1] += 1
            log_progress(index + 1, len(split_ids), f"pascal {split}")
    write_lines(voc / "ImageSets" / "Segmentation" / "train.txt", sorted(voc_train))
    write_lines(voc / "ImageSets" / "Segmentation" / "val.txt", sorted(val_ids))
    write_lines(voc / "ImageSets" / "Segmentation" / "trainval.txt", sorted(voc_seg))
    write_lines(sbd_root / "train.txt", sorted(sbd_train))
    write_lines(sbd_root / "val.txt", sorted(sbd_val))
    summary = {
        "benchmark": "pascal",
        "seed": seed,
        "image_size": image_size,
        "background": background,
        "train_per_class": train_per_class,
        "val_per_class": val_per_class,
        "train_aug_images": n_train,
        "val_images": n_val,
        "voc_train": len(voc_train),
        "voc_val": len(val_ids),
        "sbd_train": len(sbd_train),
        "sbd_val": len(sbd_val),
        "voc_val_also_in_sbd": len(set(val_ids) & sbd),
        "classes": {name: look.describe() for name, look in zip(VOC_CLASSES, classes)},
        "images_per_class": {split: dict(zip(VOC_CLASSES, n.tolist())) for split, n in per_class.items()},
    }
    atomic_write_bytes(out / "pascal_summary.json", (json.dumps(summary, indent=2) + "\n").encode(), fsync=False)
    return summary


