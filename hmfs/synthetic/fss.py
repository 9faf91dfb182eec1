"""The synthetic FSS-1000 stand-in: class folders of 10 JPEGs with binary PNG masks, and trn/val/test class lists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hmfs.runtime import atomic_write_bytes
from hmfs.synthetic.backgrounds import backdrop_photos
from hmfs.synthetic.formats import encode_jpeg, encode_png, write_lines
from hmfs.synthetic.layout import FSS_STREAM, log_progress, random_image_size, scene_with_visible
from hmfs.synthetic.scenes import ObjectSpec, class_map, distractors, draw_appearances

FSS_IMAGES_PER_CLASS = 10  # FSS-1000 has exactly 10 annotated images per class
FSS_SPLIT_RATIO = (520, 240, 240)  # trn : val : test classes, as in HSNet's FSS-1000 splits


def fss_class_names(rng: np.random.Generator, n: int) -> list[str]:
    """`n` distinct made-up lowercase words (some joined by '_', like FSS's 'hotel_slipper')."""
    consonants, vowels = "bdfgklmnprstvz", "aeiou"

    def word() -> str:
        syllables = int(rng.integers(2, 4))
        return "".join(rng.choice(list(consonants)) + rng.choice(list(vowels)) for _ in range(syllables))

    names: list[str] = []
    while len(names) < n:
        name = word() + (f"_{word()}" if rng.random() < 0.2 else "")
        if name not in names:
            names.append(name)
    return names


def generate_fss(out: Path, *, seed: int = 0, image_size: int = 128, num_classes: int = 50,
                 background: str = "clutter") -> dict[str, Any]:
    """Write `out/FSS-1000/<class>/{1..10}.jpg` + `.png` (mode L, 0 / 255), the split lists
    `out/FSS-1000/splits/{trn,val,test}.txt` (520:240:240 ratio; test.txt with CRLF line ends like
    HSNet's) and `out/fss_summary.json`; returns the summary. Images also show unlabelled
    objects of other classes."""
    n_trn = round(num_classes * FSS_SPLIT_RATIO[0] / sum(FSS_SPLIT_RATIO))
    n_val = round(num_classes * FSS_SPLIT_RATIO[1] / sum(FSS_SPLIT_RATIO))
    if min(n_trn, n_val, num_classes - n_trn - n_val) < 1:
        raise ValueError(f"--fss-classes {num_classes} leaves a split without classes; use >= 5")
    out = Path(out)
    photos = backdrop_photos(background)
    rng = np.random.default_rng([seed, FSS_STREAM])
    names = fss_class_names(rng, num_classes)
    classes = draw_appearances(rng, num_classes)
    root = out / "FSS-1000"
    for c, name in enumerate(names):
        (root / name).mkdir(parents=True, exist_ok=True)
        for n in range(1, FSS_IMAGES_PER_CLASS + 1):
            image_rng = np.random.default_rng([seed, FSS_STREAM, c, n])
            height, width = random_image_size(image_rng, image_size)
            specs = [ObjectSpec(classes[c], c) for _ in range(int(image_rng.integers(1, 4)))]
            others = image_rng.choice(np.setdiff1d(np.arange(num_classes), [c]), int(image_rng.integers(0, 3)))
            specs += [ObjectSpec(classes[o], int(o)) for o in others]  # unlabelled in this class's masks
            specs += distractors(image_rng)
            image, instances, owner = scene_with_visible(image_rng, height, width, specs, [c], photos=photos)
            mask = np.where(class_map(owner, instances) == c + 1, np.uint8(255), np.uint8(0))
            atomic_write_bytes(root / name / f"{n}.jpg", encode_jpeg(image), fsync=False)
            atomic_write_bytes(root / name / f"{n}.png", encode_png(Image.fromarray(mask)), fsync=False)
        log_progress((c + 1) * FSS_IMAGES_PER_CLASS, num_classes * FSS_IMAGES_PER_CLASS, "fss")
    order = [names[i] for i in rng.permutation(num_classes)]
    splits = {"trn": order[:n_trn], "val": order[n_trn:n_trn + n_val], "test": order[n_trn + n_val:]}
    (root / "splits").mkdir(exist_ok=True)
    for split, split_names in splits.items():
        write_lines(root / "splits" / f"{split}.txt", split_names, "\r\n" if split == "test" else "\n")
    summary = {
        "benchmark": "fss",
        "seed": seed,
        "image_size": image_size,
        "background": background,
        "classes": len(names),
        "images_per_class": FSS_IMAGES_PER_CLASS,
        "splits": {split: len(split_names) for split, split_names in splits.items()},
        "appearance": {name: look.describe() for name, look in zip(names, classes)},
    }
    atomic_write_bytes(out / "fss_summary.json", (json.dumps(summary, indent=2) + "\n").encode(), fsync=False)
    return summary


