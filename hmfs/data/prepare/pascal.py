"""PASCAL-5i from VOC2012 + SBD: SegmentationClassAug (VOC's masks, then SBD's) and the fold lists."""

from __future__ import annotations

import json
import logging
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
from PIL import Image

from hmfs.data.images import DECODE_ERRORS, unreadable
from hmfs.data.prepare.common import N_FOLDS, check_size, link_folder, progress, read_list, require, write_png
from hmfs.data.splits import PASCAL_NCLASS, pascal_fold_classes
from hmfs.runtime import atomic_write_bytes

log = logging.getLogger(__name__)

PASCAL_CLASSES = PASCAL_NCLASS


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
    require(voc_dir, "the VOC2012 devkit folder (JPEGImages, SegmentationClass, ImageSets/Segmentation)")
    images = require(voc_dir / "JPEGImages", "VOC2012's JPEGImages folder (<id>.jpg)")
    voc_masks = require(voc_dir / "SegmentationClass", "VOC2012's SegmentationClass folder (<id>.png)")
    sets = voc_dir / "ImageSets" / "Segmentation"
    voc_train = read_list(sets / "train.txt", "VOC2012's segmentation train list")
    voc_val = read_list(sets / "val.txt", "VOC2012's segmentation val list")
    require(sbd_dir, "SBD's dataset folder from benchmark.tgz (cls/, train.txt, val.txt)")
    sbd_masks = require(sbd_dir / "cls", "SBD's cls folder (<id>.mat with GTcls.Segmentation)")
    sbd_ids = [*read_list(sbd_dir / "train.txt", "SBD's train list"),
               *read_list(sbd_dir / "val.txt", "SBD's val list")]  # fmt: skip

    voc_seg = set(voc_train) | set(voc_val)
    splits = {"trn": sorted((set(sbd_ids) | set(voc_train)) - set(voc_val)), "val": sorted(set(voc_val))}
    mask_out = out_dir / "VOC2012" / "SegmentationClassAug"
    mask_out.mkdir(parents=True, exist_ok=True)
    present: dict[str, list[int]] = {}
    everything = splits["trn"] + splits["val"]
    for done, image_id in enumerate(everything, 1):
        if image_id in voc_seg:
            source = require(voc_masks / f"{image_id}.png", f"the VOC mask of {image_id}")
            label = _read_voc_png(source)
        else:
            source = require(sbd_masks / f"{image_id}.mat", f"the SBD mask of {image_id}")
            label = _read_sbd_mat(source)
        check_size(source, label.shape, images / f"{image_id}.jpg")
        values = np.unique(label)
        if values[(values > PASCAL_CLASSES) & (values != 255)].size:
            raise ValueError(f"{source} has labels {values.tolist()}; expected 0..20 and 255")
        present[image_id] = [int(v) for v in values if 1 <= v <= PASCAL_CLASSES]
        write_png(mask_out / f"{image_id}.png", label)
        progress(done, len(everything), "pascal masks")
    link_folder(images, out_dir / "VOC2012" / "JPEGImages")

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
            atomic_write_bytes(splits_out / "pascal" / split / f"fold{fold}.txt", "".join(lines).encode(), fsync=False)
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
