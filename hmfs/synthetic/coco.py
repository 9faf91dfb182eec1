"""The synthetic COCO 2014 stand-in: train2014/val2014 JPEGs and instances_*.json with the real category ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from hmfs.runtime import atomic_write_bytes
from hmfs.synthetic.backgrounds import backdrop_photos
from hmfs.synthetic.formats import encode_jpeg
from hmfs.synthetic.layout import COCO_STREAM, log_progress, random_image_size, scene_with_visible
from hmfs.synthetic.scenes import ObjectSpec, class_map, distractors, draw_appearances

# The real COCO 2014 categories: (id, name, supercategory); ids 12, 26, 29, 30, 45, 66, 68, 69, 71, 83
# do not exist, so class index (position in the sorted ids) differs from id - 1 after person.
COCO_CATEGORIES = (
    (1, "person", "person"), (2, "bicycle", "vehicle"), (3, "car", "vehicle"),
    (4, "motorcycle", "vehicle"), (5, "airplane", "vehicle"), (6, "bus", "vehicle"),
    (7, "train", "vehicle"), (8, "truck", "vehicle"), (9, "boat", "vehicle"),
    (10, "traffic light", "outdoor"), (11, "fire hydrant", "outdoor"), (13, "stop sign", "outdoor"),
    (14, "parking meter", "outdoor"), (15, "bench", "outdoor"), (16, "bird", "animal"),
    (17, "cat", "animal"), (18, "dog", "animal"), (19, "horse", "animal"), (20, "sheep", "animal"),
    (21, "cow", "animal"), (22, "elephant", "animal"), (23, "bear", "animal"),
    (24, "zebra", "animal"), (25, "giraffe", "animal"), (27, "backpack", "accessory"),
    (28, "umbrella", "accessory"), (31, "handbag", "accessory"), (32, "tie", "accessory"),
    (33, "suitcase", "accessory"), (34, "frisbee", "sports"), (35, "skis", "sports"),
    (36, "snowboard", "sports"), (37, "sports ball", "sports"), (38, "kite", "sports"),
    (39, "baseball bat", "sports"), (40, "baseball glove", "sports"), (41, "skateboard", "sports"),
    (42, "surfboard", "sports"), (43, "tennis racket", "sports"), (44, "bottle", "kitchen"),
    (46, "wine glass", "kitchen"), (47, "cup", "kitchen"), (48, "fork", "kitchen"),
    (49, "knife", "kitchen"), (50, "spoon", "kitchen"), (51, "bowl", "kitchen"),
    (52, "banana", "food"), (53, "apple", "food"), (54, "sandwich", "food"), (55, "orange", "food"),
    (56, "broccoli", "food"), (57, "carrot", "food"), (58, "hot dog", "food"), (59, "pizza", "food"),
    (60, "donut", "food"), (61, "cake", "food"), (62, "chair", "furniture"),
    (63, "couch", "furniture"), (64, "potted plant", "furniture"), (65, "bed", "furniture"),
    (67, "dining table", "furniture"), (70, "toilet", "furniture"), (72, "tv", "electronic"),
    (73, "laptop", "electronic"), (74, "mouse", "electronic"), (75, "remote", "electronic"),
    (76, "keyboard", "electronic"), (77, "cell phone", "electronic"), (78, "microwave", "appliance"),
    (79, "oven", "appliance"), (80, "toaster", "appliance"), (81, "sink", "appliance"),
    (82, "refrigerator", "appliance"), (84, "book", "indoor"), (85, "clock", "indoor"),
    (86, "vase", "indoor"), (87, "scissors", "indoor"), (88, "teddy bear", "indoor"),
    (89, "hair drier", "indoor"), (90, "toothbrush", "indoor"),
)  # fmt: skip

MAX_CLASSES_PER_IMAGE = 5  # COCO: a cap so objects keep a usable size
COCO_CLASSES_PER_IMAGE = 2  # COCO: the class guarantee grows to about this many classes per image


def assign_classes(
    rng: np.random.Generator, n_images: int, n_classes: int, min_images: int, extra_prob: float = 0.3
) -> list[list[int]]:
    """Classes of each image such that every class is in at least `min_images` images: each class
    in turn goes to the `min_images` images holding the fewest classes so far (random ties), then
    some images get one more random class. Returns n_images lists of distinct class indices."""
    if n_classes * min_images > n_images * MAX_CLASSES_PER_IMAGE or min_images > n_images:
        raise ValueError(
            f"{n_images} images cannot give each of {n_classes} classes {min_images} images with at "
            f"most {MAX_CLASSES_PER_IMAGE} classes per image; raise the image count or lower "
            f"--min-images-per-class"
        )
    assigned: list[list[int]] = [[] for _ in range(n_images)]
    counts = np.zeros(n_images, dtype=int)
    for c in rng.permutation(n_classes):
        for i in np.lexsort((rng.random(n_images), counts))[:min_images]:
            assigned[i].append(int(c))
            counts[i] += 1
    for classes in assigned:
        if (not classes or rng.random() < extra_prob) and len(classes) < MAX_CLASSES_PER_IMAGE:
            classes.append(int(rng.choice(np.setdiff1d(np.arange(n_classes), classes))))
    return assigned


def generate_coco(
    out: Path,
    *,
    seed: int = 0,
    image_size: int = 128,
    train_images: int = 400,
    val_images: int = 200,
    min_images_per_class: int = 6,
    background: str = "clutter",
) -> dict[str, Any]:
    """Write `out/coco/{train2014,val2014}/COCO_<split>2014_<12-digit id>.jpg`,
    `out/coco/annotations/instances_{train,val}2014.json` (real category ids and names; polygon
    segmentations, plus iscrowd=1 compressed-RLE regions for clusters of tiny copies) and
    `out/coco_summary.json`; returns the summary. Every class is visible in at least
    max(min_images_per_class, images * 2 // 80) images of each split."""
    out = Path(out)
    photos = backdrop_photos(background)
    rng = np.random.default_rng([seed, COCO_STREAM])
    classes = draw_appearances(rng, len(COCO_CATEGORIES))
    image_ids = rng.choice(np.arange(1, 581930), size=train_images + val_images, replace=False)
    categories = [{"supercategory": sup, "id": cid, "name": name} for cid, name, sup in COCO_CATEGORIES]
    summary: dict[str, Any] = {
        "benchmark": "coco",
        "seed": seed,
        "image_size": image_size,
        "background": background,
        "min_images_per_class": min_images_per_class,
        "classes": {name: look.describe() for (_, name, _), look in zip(COCO_CATEGORIES, classes)},
    }
    annotation_id = 0
    splits = (("train", image_ids[:train_images], 0), ("val", image_ids[train_images:], 1))
    for split, split_ids, stream in splits:
        folder = out / "coco" / f"{split}2014"
        folder.mkdir(parents=True, exist_ok=True)
        # More images buy more images per class (about COCO_CLASSES_PER_IMAGE classes per image).
        per_class_floor = max(min_images_per_class, len(split_ids) * COCO_CLASSES_PER_IMAGE // len(classes))
        assigned = assign_classes(np.random.default_rng([seed, COCO_STREAM, stream]), len(split_ids),
                                  len(classes), per_class_floor)  # fmt: skip
        images, annotations = [], []
        per_class = np.zeros(len(classes), int)
        crowds = 0
        for index, (image_id, image_classes) in enumerate(zip(split_ids.tolist(), assigned)):
            image_rng = np.random.default_rng([seed, COCO_STREAM, stream, index])
            height, width = random_image_size(image_rng, image_size)
            specs = []
            for rank, c in enumerate(image_classes):
                # Every tenth image shows its first class as a crowd, so both kinds always exist.
                crowd = (index % 10 == 0 and rank == 0) or image_rng.random() < 0.05
                specs.append(ObjectSpec(classes[c], c, crowd=crowd))
                if image_rng.random() < 0.3:
                    specs.append(ObjectSpec(classes[c], c))
            specs += distractors(image_rng)
            image, instances, owner = scene_with_visible(image_rng, height, width, specs, image_classes, photos=photos)
            file_name = f"COCO_{split}2014_{image_id:012d}.jpg"
            atomic_write_bytes(folder / file_name, encode_jpeg(image), fsync=False)
            images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
            for instance in instances:  # paint order: larger first, so ids grow as area shrinks
                if instance.label < 0:
                    continue
                annotation_id += 1
                rle = mask_utils.encode(np.asfortranarray(instance.mask.astype(np.uint8)))
                if instance.crowd:
                    segmentation: Any = {"size": [height, width], "counts": rle["counts"].decode("ascii")}
                    crowds += 1
                else:
                    segmentation = instance.polygons
                annotations.append({
                    "id": annotation_id,
                    "image_id": image_id,
                    "category_id": COCO_CATEGORIES[instance.label][0],
                    "segmentation": segmentation,
                    "area": float(mask_utils.area(rle)),
                    "bbox": [round(float(x), 2) for x in mask_utils.toBbox(rle)],
                    "iscrowd": int(instance.crowd),
                })  # fmt: skip
            present = np.unique(class_map(owner, instances)).astype(int)
            per_class[present[present > 0] - 1] += 1
            log_progress(index + 1, len(split_ids), f"coco {split}")
        document = {
            "info": {"description": "hmfs synthetic COCO 2014 stand-in", "version": "1.0", "year": 2014},
            "licenses": [],
            "images": images,
            "annotations": annotations,
            "categories": categories,
        }
        annotations_dir = out / "coco" / "annotations"
        annotations_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(annotations_dir / f"instances_{split}2014.json", json.dumps(document).encode(), fsync=False)
        summary[split] = {
            "images": len(images),
            "annotations": len(annotations),
            "crowd_annotations": crowds,
            "images_per_class_floor": per_class_floor,
            "images_per_class_min": int(per_class.min()),
        }
    atomic_write_bytes(out / "coco_summary.json", (json.dumps(summary, indent=2) + "\n").encode(), fsync=False)
    return summary


