"""COCO-20i from COCO 2014: class-index mask PNGs from the instance annotations, in worker processes, and the fold lists."""

from __future__ import annotations

import json
import logging
import multiprocessing
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
from pycocotools import mask as mask_utils

from hmfs.data.prepare.common import N_FOLDS, PROGRESS_EVERY, check_size, link_folder, read_json, require, write_png
from hmfs.data.splits import COCO_NCLASS, coco_fold_classes
from hmfs.runtime import atomic_write_bytes

log = logging.getLogger(__name__)

COCO_CLASSES = COCO_NCLASS
COCO_CHUNK = 250  # images per worker task: large enough to amortise the transfer of their annotations


def _instance_mask(segmentation: Any, height: int, width: int, where: str) -> np.ndarray:
    """One annotation's mask, (H, W) bool: polygons (list of flat xy lists), uncompressed RLE
    (counts as a list) or compressed RLE (counts as a string), as COCO's annToMask reads them."""
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    else:
        if list(segmentation["size"]) != [height, width]:
            size = segmentation["size"]
            raise ValueError(f"{where}: RLE size {size} differs from the image's {[height, width]}")
        if isinstance(segmentation["counts"], list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = segmentation
    return mask_utils.decode(rle).astype(bool)


def coco_label_map(annotations: Iterable[dict], category_index: dict[int, int], height: int, width: int,
                   where: str = "annotation") -> np.ndarray:  # fmt: skip
    """(H, W) uint8 mask of one image: class index + 1, 0 background. Instances are painted from
    the largest to the smallest (equal areas: lower annotation id first), so the smaller instance
    wins an overlap; crowd regions count as their class."""
    decoded = []
    for ann in annotations:
        mask = _instance_mask(ann["segmentation"], height, width, f"{where} {ann['id']}")
        decoded.append((-int(mask.sum()), ann["id"], category_index[ann["category_id"]], mask))
    label = np.zeros((height, width), dtype=np.uint8)
    for _, _, index, mask in sorted(decoded, key=lambda item: item[:2]):
        label[mask] = index + 1
    return label


def _coco_masks(task: tuple[Path, Path, str, dict[int, int], list[tuple[dict, list[dict]]]],
                ) -> list[tuple[str, list[int]]]:
    """Write the masks of one chunk of images (run in a worker process when prepare has threads).

    task: (image folder, mask folder, annotation file name, category id -> class index, [(image
    entry, its annotations)]). Returns (image file name, class indices with a pixel in its mask).
    """
    images, masks, json_name, category_index, items = task
    shown = []
    for image, image_annotations in items:
        height, width = image["height"], image["width"]
        png_name = Path(image["file_name"]).with_suffix(".png").name
        check_size(f"{masks.name}/{png_name} (from {json_name})", (height, width), images / image["file_name"])
        label = coco_label_map(image_annotations, category_index, height, width, f"{json_name} annotation")
        write_png(masks / png_name, label)
        # bincount over the 81 values: the classes present, far faster than np.unique on the mask
        pixels = np.bincount(label.ravel(), minlength=COCO_CLASSES + 1)
        shown.append((image["file_name"], np.flatnonzero(pixels[1:]).tolist()))
    return shown


def _map_chunks(tasks: Iterable[tuple], threads: int, what: str, total: int) -> Iterator[list[tuple[str, list[int]]]]:
    """Yield `_coco_masks(task)` of every task, in any order, from `threads` worker processes (in
    this process when 1); the first error cancels the tasks not yet started and is raised."""
    done = 0

    def counted(result: list) -> list:
        nonlocal done
        before, done = done, done + len(result)
        if before // PROGRESS_EVERY != done // PROGRESS_EVERY or done == total:
            log.info("%s: %d/%d", what, done, total)
        return result

    if threads <= 1:
        for task in tasks:
            yield counted(_coco_masks(task))
        return
    # spawn, not fork: a forked worker would inherit the parsed JSON and copy it page by page as
    # reference counts change. prepare imports no torch, so a worker starts in about a second.
    executor = ProcessPoolExecutor(threads, mp_context=multiprocessing.get_context("spawn"))
    try:
        pending = {executor.submit(_coco_masks, task) for task in tasks}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield counted(future.result())  # re-raises a worker's error, which names the file
    finally:
        executor.shutdown(wait=True, cancel_futures=True)

def prepare_coco(coco_dir: Path, out_dir: Path, splits_out: Path, threads: int = 1) -> dict[str, Any]:
    """Build DATA/COCO2014 and SPLITS/coco.

    coco_dir: folder holding train2014/, val2014/ and annotations/instances_{train,val}2014.json;
    out_dir: DATA root; splits_out: SPLITS root; threads: worker processes for the masks. Returns counts.
    """
    coco_dir, out_dir, splits_out = map(Path, (coco_dir, out_dir, splits_out))
    require(coco_dir, "the COCO 2014 folder (train2014/, val2014/, annotations/)")
    showing: dict[str, dict[int, list[str]]] = {}
    summary: dict[str, Any] = {}
    for split in ("train", "val"):
        name = f"{split}2014"
        images = require(coco_dir / name, f"COCO's {name} image folder (COCO_{name}_<12-digit id>.jpg)")
        json_path = coco_dir / "annotations" / f"instances_{name}.json"
        require(json_path, f"COCO's {name} instance annotations")
        document = read_json(json_path)
        category_ids = sorted(category["id"] for category in document["categories"])
        if len(category_ids) != COCO_CLASSES:
            raise ValueError(f"{json_path} has {len(category_ids)} categories; COCO-20i needs {COCO_CLASSES}")
        category_index = {cid: index for index, cid in enumerate(category_ids)}
        by_image: dict[int, list[dict]] = defaultdict(list)
        for ann in document["annotations"]:
            by_image[ann["image_id"]].append(ann)
        counts = {"images": len(document["images"]), "annotations": len(document["annotations"])}
        entries = document["images"]
        del document  # the annotations live on in by_image, and leave it chunk by chunk
        masks = out_dir / "COCO2014" / "annotations" / name
        masks.mkdir(parents=True, exist_ok=True)
        # A chunk's annotations leave by_image when it is built, and memory once it is written.
        tasks = ((images, masks, json_path.name, category_index,
                  [(image, by_image.pop(image["id"], [])) for image in entries[start:start + COCO_CHUNK]])
                 for start in range(0, len(entries), COCO_CHUNK))
        showing[split] = {c: [] for c in range(COCO_CLASSES)}
        for shown in _map_chunks(tasks, threads, f"coco {name} masks", len(entries)):
            for file_name, classes in shown:
                for c in classes:
                    showing[split][c].append(f"{name}/{file_name}")
        del by_image
        link_folder(images, out_dir / "COCO2014" / name)
        summary[split] = counts

    for fold in range(N_FOLDS):
        test = set(coco_fold_classes(fold))
        lists = {
            "trn": {str(c): [] if c in test else sorted(showing["train"][c]) for c in range(COCO_CLASSES)},
            "val": {str(c): sorted(showing["val"][c]) if c in test else [] for c in range(COCO_CLASSES)},
        }
        for split, mapping in lists.items():
            text = json.dumps(mapping, indent=1) + "\n"
            atomic_write_bytes(splits_out / "coco" / split / f"fold{fold}.json", text.encode(), fsync=False)
    summary["images_per_class_min"] = {split: min(map(len, showing[split].values())) for split in showing}
    log.info("coco prepared: %s", json.dumps(summary))
    return summary
