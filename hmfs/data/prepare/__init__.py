"""Turn raw PASCAL VOC2012 + SBD, COCO 2014 and FSS-1000 trees (real or synthetic) into HSNet's layout and splits."""

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
# Images are never copied: the image folders are relative symlinks to the raw folders (the project
# can be moved whole; `cp -rL` copies the prepared folder with its images). Masks and
# lists are written through a temporary name and a rename; re-running rewrites the same bytes.
# prepare reads image headers (sizes) only; `python -m hmfs verify-data` decodes every prepared
# image and mask. A file that cannot be read stops prepare with a ValueError naming it.
#
# Scale: COCO's masks are built in `threads` worker processes, chunks of COCO_CHUNK images each
# (pycocotools holds the GIL, so threads would not help). Measured on a generated annotation file
# of COCO 2014's size: docs/data.md, "Getting the data".

from hmfs.data.prepare.coco import COCO_CHUNK, COCO_CLASSES, coco_label_map, prepare_coco
from hmfs.data.prepare.common import N_FOLDS, PROGRESS_EVERY
from hmfs.data.prepare.fss import FSS_SPLITS, prepare_fss
from hmfs.data.prepare.pascal import PASCAL_CLASSES, prepare_pascal

__all__ = [
    "COCO_CHUNK", "COCO_CLASSES", "FSS_SPLITS", "N_FOLDS", "PASCAL_CLASSES", "PROGRESS_EVERY", "coco_label_map",
    "prepare_coco", "prepare_fss", "prepare_pascal",
]
