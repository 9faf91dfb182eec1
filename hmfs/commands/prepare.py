"""Turn raw PASCAL VOC2012 + SBD, COCO 2014 and FSS-1000 trees (real or synthetic) into HSNet's layout and splits."""

from __future__ import annotations

import argparse
import io
import json
import logging
import multiprocessing
import os
import zlib
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import scipy.io
from PIL import Image
from pycocotools import mask as mask_utils

from hmfs.data import BENCHMARKS
from hmfs.data.images import DECODE_ERRORS, image_size, unreadable
from hmfs.data.splits import COCO_NCLASS, PASCAL_NCLASS, coco_fold_classes, pascal_fold_classes
from hmfs.runtime import atomic_write_bytes

# Prepared layout (`DATA`, `SPLITS` are the `--out` and `--splits-out` folders):
#
#     DATA/VOC2012/JPEGImages -> symlink to the raw VOC2012/JPEGImages
#     DATA/VOC2012/SegmentationClassAug/<id>.png   "L", 0 background, 1..20 class, 255 boundary/ignore
#     DATA/COCO2014/{train2014,val2014} -> symlinks to the raw image folders
#     DATA/COCO2014/annotations/{train2014,val2014}/<name>.png   "L", class index + 1, 0 background
#     DATA/FSS-1000/<class> -> symlinks to the raw class folders ({1..10}.jpg / .png)
#     SPLITS/pascal/{trn,val}/fold{k}.txt   lines "<id>__<class 1..20, 2 digits>", sorted by class then id
#     SPLITS/coco/{trn,val}/fold{k}.json    {"<class index 0..79>": ["train2014/<name>.jpg", ...]}
#     SPLITS/fss/{trn,val,test}.txt         class folder names, LF line ends
#
# Rules (docs/protocol.md section 2):
# - PASCAL: SegmentationClassAug = VOC's SegmentationClass (255 band kept) for the VOC segmentation
#   images, SBD's GTcls.Segmentation for the others. train_aug = (SBD train | SBD val | VOC train)
#   minus VOC val; val = VOC val. Fold k holds classes 5k+1..5k+5; a list holds every (image, fold
#   class) pair whose class has at least one pixel in the image's mask.
# - COCO: class index = position of the category id in the sorted ids (0 = person). Fold k's test
#   classes are {k, k+4, ..., k+76}; trn/fold{k} maps the 60 other classes to the train2014 images
#   showing them and the 20 test classes to []; val/fold{k} maps the 20 test classes to the val2014
#   images showing them and the rest to [] (the structure of HSNet's pickles).
#   Overlap rule: instances are painted from the largest to the smallest (area = pixels of the
#   decoded mask), so where instances overlap the SMALLER one wins and small objects stay visible;
#   between equal areas the higher annotation id wins (painted later). Crowd (iscrowd=1, RLE)
#   regions are painted as their class like any other instance. An image "shows" a class when the
#   class has at least one pixel in the final mask.
# - FSS-1000: the classes of each split come from `<raw>/FSS-1000/splits/{trn,val,test}.txt` (CRLF
#   or LF) when present (synthetic trees); the real download has none, so HSNet's lists shipped in
#   `hmfs/splits/fss/` are used.
#
# Images are never copied: the image folders are absolute symlinks to the raw folders. Masks and
# lists are written through a temporary name and a rename; re-running rewrites the same bytes.
# prepare reads image headers (sizes) only; `python -m hmfs verify-data` decodes every prepared
# image and mask. A file that cannot be read stops prepare with a ValueError naming it.
#
# Scale: COCO's masks are built in `threads` worker processes, chunks of COCO_CHUNK images each
# (pycocotools holds the GIL, so threads would not help). Measured on a generated annotation file
# of COCO 2014's size: README, "Getting the data".

log = logging.getLogger(__name__)

N_FOLDS = 4
PASCAL_CLASSES = PASCAL_NCLASS
COCO_CLASSES = COCO_NCLASS
FSS_SPLITS = ("trn", "val", "test")
PROGRESS_EVERY = 1000  # files between two progress lines
COCO_CHUNK = 250  # images per worker task: large enough to amortise the transfer of their annotations


# ----------------------------------------------------------------------------------------------
# Helpers


def _write(path: Path, data: bytes) -> None:
    """Write through a temporary name and a rename, so a killed run never leaves half a file."""
    atomic_write_bytes(path, data, fsync=False)


def _write_png(path: Path, label: np.ndarray) -> None:
    """label: (H, W) uint8, written as a single-channel "L" PNG."""
    buffer = io.BytesIO()
    Image.fromarray(label).save(buffer, format="PNG")
    _write(path, buffer.getvalue())


def _require(path: Path, expected: str) -> Path:
    """`path` if it exists, else FileNotFoundError naming it and what should be there."""
    if not path.exists():
        raise FileNotFoundError(f"expected {expected} at {path}")
    return path


def _read_list(path: Path, expected: str) -> list[str]:
    """Non-empty lines of a text list, LF or CRLF."""
    return [line.strip() for line in _require(path, expected).read_text().splitlines() if line.strip()]


def _link(target: Path, link: Path) -> None:
    """Make `link` an absolute symlink to the folder `target` (an older symlink is replaced)."""
    target = target.resolve()
    if link.is_symlink():
        if Path(os.readlink(link)) == target:
            return
    elif link.exists():
        raise ValueError(f"{link} exists and is not a symlink; remove it or prepare into another --out")
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.tmp-link")
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(target, target_is_directory=True)
    os.replace(tmp, link)


def _check_size(mask_name: Path | str, mask_hw: tuple[int, int], image: Path) -> None:
    """ValueError when a (H, W) mask does not match the size of its image file (read from its header)."""
    width, height = image_size(_require(image, f"the image of mask {mask_name}"))
    if (height, width) != tuple(mask_hw):
        raise ValueError(
            f"mask {mask_name} is {mask_hw[0]}x{mask_hw[1]} (HxW) but its image {image} is {height}x{width}"
        )


def _progress(done: int, total: int, what: str) -> None:
    if done % PROGRESS_EVERY == 0 or done == total:
        log.info("%s: %d/%d", what, done, total)


# ----------------------------------------------------------------------------------------------
# PASCAL-5i


def _read_voc_png(path: Path) -> np.ndarray:
    """VOC SegmentationClass PNG → (H, W) uint8 class indices (a "P" image already holds indices)."""
    try:
        with Image.open(path) as image:
            mode = image.mode
            label = np.array(image, dtype=np.uint8) if mode in ("P", "L") else None
    except FileNotFoundError:
        raise
    except DECODE_ERRORS as error:
        raise unreadable(path, "mask", error) from error
    if label is None:
        raise ValueError(f"{path} is a {mode!r} PNG; expected VOC's palette ('P') or index ('L') PNG")
    return label


def _read_sbd_mat(path: Path) -> np.ndarray:
    """SBD cls/<id>.mat → GTcls.Segmentation as (H, W) uint8 class indices 0..20."""
    try:
        gt = scipy.io.loadmat(path, struct_as_record=False, squeeze_me=True)["GTcls"]
        return np.asarray(gt.Segmentation, dtype=np.uint8)
    except (KeyError, AttributeError) as error:
        raise ValueError(f"{path} has no GTcls.Segmentation ({error})") from error
    except FileNotFoundError:
        raise
    except (OSError, ValueError, TypeError, EOFError, zlib.error, scipy.io.matlab.MatReadError) as error:
        raise ValueError(f"{path}: truncated or unreadable MAT file ({type(error).__name__}: {error})") from error


def prepare_pascal(voc_dir: Path, sbd_dir: Path, out_dir: Path, splits_out: Path) -> dict[str, Any]:
    """Build DATA/VOC2012 and SPLITS/pascal.

    voc_dir: the devkit's VOC2012 folder (JPEGImages, SegmentationClass, ImageSets/Segmentation);
    sbd_dir: SBD's `benchmark_RELEASE/dataset` folder (cls/*.mat, train.txt, val.txt);
    out_dir: DATA root; splits_out: SPLITS root. Returns counts.
    """
    voc_dir, sbd_dir, out_dir, splits_out = map(Path, (voc_dir, sbd_dir, out_dir, splits_out))
    _require(voc_dir, "the VOC2012 devkit folder (JPEGImages, SegmentationClass, ImageSets/Segmentation)")
    images = _require(voc_dir / "JPEGImages", "VOC2012's JPEGImages folder (<id>.jpg)")
    voc_masks = _require(voc_dir / "SegmentationClass", "VOC2012's SegmentationClass folder (<id>.png)")
    sets = voc_dir / "ImageSets" / "Segmentation"
    voc_train = _read_list(sets / "train.txt", "VOC2012's segmentation train list")
    voc_val = _read_list(sets / "val.txt", "VOC2012's segmentation val list")
    _require(sbd_dir, "SBD's dataset folder from benchmark.tgz (cls/, train.txt, val.txt)")
    sbd_masks = _require(sbd_dir / "cls", "SBD's cls folder (<id>.mat with GTcls.Segmentation)")
    sbd_ids = [*_read_list(sbd_dir / "train.txt", "SBD's train list"),
               *_read_list(sbd_dir / "val.txt", "SBD's val list")]  # fmt: skip

    voc_seg = set(voc_train) | set(voc_val)
    splits = {"trn": sorted((set(sbd_ids) | set(voc_train)) - set(voc_val)), "val": sorted(set(voc_val))}
    mask_out = out_dir / "VOC2012" / "SegmentationClassAug"
    mask_out.mkdir(parents=True, exist_ok=True)
    present: dict[str, list[int]] = {}
    everything = splits["trn"] + splits["val"]
    for done, image_id in enumerate(everything, 1):
        if image_id in voc_seg:
            source = _require(voc_masks / f"{image_id}.png", f"the VOC mask of {image_id}")
            label = _read_voc_png(source)
        else:
            source = _require(sbd_masks / f"{image_id}.mat", f"the SBD mask of {image_id}")
            label = _read_sbd_mat(source)
        _check_size(source, label.shape, images / f"{image_id}.jpg")
        values = np.unique(label)
        if values[(values > PASCAL_CLASSES) & (values != 255)].size:
            raise ValueError(f"{source} has labels {values.tolist()}; expected 0..20 and 255")
        present[image_id] = [int(v) for v in values if 1 <= v <= PASCAL_CLASSES]
        _write_png(mask_out / f"{image_id}.png", label)
        _progress(done, len(everything), "pascal masks")
    _link(images, out_dir / "VOC2012" / "JPEGImages")

    pairs: dict[str, list[int]] = {}
    for split, ids in splits.items():
        pairs[split] = []
        for fold in range(N_FOLDS):
            labels = [c + 1 for c in pascal_fold_classes(fold)]  # 1-based VOC labels
            # HSNet's own lists: trn by class then id, val by id (so a partial pass over a cycled
            # test list still spreads over the classes).
            lines = [f"{i}__{c:02d}\n" for c in labels for i in ids if c in present[i]]
            if split == "val":
                lines.sort()
            _write(splits_out / "pascal" / split / f"fold{fold}.txt", "".join(lines).encode())
            pairs[split].append(len(lines))
    summary = {
        "train_aug": len(splits["trn"]),
        "val": len(splits["val"]),
        "masks_from_voc": sum(image_id in voc_seg for image_id in everything),
        "masks_from_sbd": sum(image_id not in voc_seg for image_id in everything),
        "pairs_per_fold": pairs,
    }
    log.info("pascal prepared: %s", json.dumps(summary))
    return summary


# ----------------------------------------------------------------------------------------------
# COCO-20i


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
        _check_size(f"{masks.name}/{png_name} (from {json_name})", (height, width), images / image["file_name"])
        label = coco_label_map(image_annotations, category_index, height, width, f"{json_name} annotation")
        _write_png(masks / png_name, label)
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


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: truncated or invalid JSON ({error})") from error


def prepare_coco(coco_dir: Path, out_dir: Path, splits_out: Path, threads: int = 1) -> dict[str, Any]:
    """Build DATA/COCO2014 and SPLITS/coco.

    coco_dir: folder holding train2014/, val2014/ and annotations/instances_{train,val}2014.json;
    out_dir: DATA root; splits_out: SPLITS root; threads: worker processes for the masks. Returns counts.
    """
    coco_dir, out_dir, splits_out = map(Path, (coco_dir, out_dir, splits_out))
    _require(coco_dir, "the COCO 2014 folder (train2014/, val2014/, annotations/)")
    showing: dict[str, dict[int, list[str]]] = {}
    summary: dict[str, Any] = {}
    for split in ("train", "val"):
        name = f"{split}2014"
        images = _require(coco_dir / name, f"COCO's {name} image folder (COCO_{name}_<12-digit id>.jpg)")
        json_path = coco_dir / "annotations" / f"instances_{name}.json"
        _require(json_path, f"COCO's {name} instance annotations")
        document = _read_json(json_path)
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
        _link(images, out_dir / "COCO2014" / name)
        summary[split] = counts

    for fold in range(N_FOLDS):
        test = set(coco_fold_classes(fold))
        lists = {
            "trn": {str(c): [] if c in test else sorted(showing["train"][c]) for c in range(COCO_CLASSES)},
            "val": {str(c): sorted(showing["val"][c]) if c in test else [] for c in range(COCO_CLASSES)},
        }
        for split, mapping in lists.items():
            text = json.dumps(mapping, indent=1) + "\n"
            _write(splits_out / "coco" / split / f"fold{fold}.json", text.encode())
    summary["images_per_class_min"] = {split: min(map(len, showing[split].values())) for split in showing}
    log.info("coco prepared: %s", json.dumps(summary))
    return summary


# ----------------------------------------------------------------------------------------------
# FSS-1000


def prepare_fss(fss_dir: Path, out_dir: Path, splits_out: Path, images_per_class: int = 10) -> dict[str, Any]:
    """Build DATA/FSS-1000 (one symlink per class) and SPLITS/fss.

    fss_dir: the FSS-1000 folder (<class>/{1..10}.jpg + .png, splits/{trn,val,test}.txt);
    out_dir: DATA root; splits_out: SPLITS root. Returns the class count per split.
    """
    fss_dir, out_dir, splits_out = map(Path, (fss_dir, out_dir, splits_out))
    _require(fss_dir, "the FSS-1000 folder (<class>/{1..10}.jpg and .png, splits/)")
    # The synthetic tree ships its own class lists; the real download has none, so HSNet's
    # (shipped in hmfs/splits/fss) are used for it.
    list_dir = fss_dir / "splits"
    if not list_dir.is_dir():
        from hmfs.data.splits import packaged_splits_dir

        list_dir = packaged_splits_dir() / "fss"
        log.info("no %s: using HSNet's FSS-1000 class lists from %s", fss_dir / "splits", list_dir)
    splits = {
        split: _read_list(list_dir / f"{split}.txt", f"the FSS-1000 {split} class list (one class folder name per line)")
        for split in FSS_SPLITS
    }
    seen: dict[str, str] = {}
    for split, names in splits.items():
        for name in names:
            if name in seen:
                raise ValueError(f"FSS-1000 class {name!r} is in both {seen[name]}.txt and {split}.txt")
            seen[name] = split
    for done, name in enumerate(seen, 1):
        folder = _require(fss_dir / name, f"the FSS-1000 class folder of {name!r}")
        for n in range(1, images_per_class + 1):
            mask_path = _require(folder / f"{n}.png", f"mask {n}.png of FSS-1000 class {name!r}")
            width, height = image_size(mask_path)
            _check_size(mask_path, (height, width), folder / f"{n}.jpg")
        _link(folder, out_dir / "FSS-1000" / name)
        _progress(done, len(seen), "fss classes")
    for split, names in splits.items():
        _write(splits_out / "fss" / f"{split}.txt", "".join(f"{name}\n" for name in names).encode())
    summary = {split: len(names) for split, names in splits.items()}
    log.info("fss prepared: %s", json.dumps(summary))
    return summary


# ----------------------------------------------------------------------------------------------
# Command line


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="turn a raw benchmark tree into HSNet's data layout and split lists",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--benchmark", required=True, choices=BENCHMARKS)
    parser.add_argument("--raw", type=Path, required=True,
                        help="holds VOCdevkit/ + benchmark_RELEASE/, coco/ or FSS-1000/")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="DATA folder to write")
    parser.add_argument("--splits-out", type=Path, required=True, help="SPLITS folder to write")
    parser.add_argument("--summary", type=Path, default=None,
                        help="also write the counts as JSON here, last (the workflow's marker of a finished prepare)")
    parser.add_argument("--threads", type=int, default=1,
                        help="worker processes for COCO's masks (the workflow passes the job's threads)")
    parser.add_argument("--asset-records", type=Path, nargs="+", default=[], metavar="JSON",
                        help="records of the verified downloads this tree came from (`unpack --summary`), copied "
                             "into --summary as the data's provenance")
    parser.set_defaults(func=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    raw = args.raw
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    records = [_read_json(_require(path, "an asset record written by `hmfs unpack --summary`"))
               for path in args.asset_records]
    if args.benchmark == "pascal":
        voc, sbd = raw / "VOCdevkit" / "VOC2012", raw / "benchmark_RELEASE" / "dataset"
        summary = prepare_pascal(voc, sbd, args.out, args.splits_out)
    elif args.benchmark == "coco":
        summary = prepare_coco(raw / "coco", args.out, args.splits_out, threads=args.threads)
    else:
        summary = prepare_fss(raw / "FSS-1000", args.out, args.splits_out)
    if records:
        summary["assets"] = records
    if args.summary:
        _write(args.summary, (json.dumps({"benchmark": args.benchmark, "raw": str(raw), **summary}, indent=2) + "\n").encode())
    return 0
