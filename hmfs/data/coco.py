"""COCO-20i episodes: COCO 2014 images with class-index PNG masks, HSNet's interleaved folds."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from hmfs.data.episodes import DEFAULT_EVAL_EPISODES, EpisodeDataset
from hmfs.data.splits import (  # noqa: F401 (coco_fold_classes: importable from here too)
    BENCHMARK_FOLDS, COCO_NCLASS, coco_fold_classes, coco_split_file, load_coco_split,
)

COCO_NFOLDS = BENCHMARK_FOLDS["coco"]


class CocoEpisodes(EpisodeDataset):
    """COCO-20i: every episode draws a class uniformly from `class_ids`, then a query of that class,
    then `shot` distinct supports != query (HSNet ignores the index the same way).

    Training reads `trn/fold{k}` (the 60 other classes; one epoch = the number of distinct images
    listed for them, HSNet's length); evaluation reads `val/fold{k}` and lasts `num_episodes`
    (default 1000). `class_ids` (evaluation) may name any COCO class; each is read from the `val`
    list of the fold that tests it. Images are named as listed, e.g. `val2014/COCO_val2014_....jpg`.
    """

    benchmark = "coco"
    nfolds = COCO_NFOLDS
    layout = ("DATA/COCO2014/{train2014,val2014}/<name>.jpg and "
              "DATA/COCO2014/annotations/{train2014,val2014}/<name>.png")

    def _build_index(self, requested: Sequence[int] | None) -> None:
        self._base = self.data_root / "COCO2014"
        self._require_folders(self._base, self._base / "annotations")
        self.nclass = COCO_NCLASS
        fold_classes = coco_fold_classes(self.fold)
        if self.training:
            self.class_ids = [c for c in range(self.nclass) if c not in fold_classes]
            sources = {self.fold: coco_split_file(self.splits_dir, "trn", self.fold)}
        else:
            self.class_ids = self._select_classes(requested, fold_classes)
            sources = {k: coco_split_file(self.splits_dir, "val", k)
                       for k in sorted({c % self.nfolds for c in self.class_ids})}
        loaded = {k: load_coco_split(path) for k, path in sources.items()}
        pools = {}
        for class_id in self.class_ids:
            fold = self.fold if self.training else class_id % self.nfolds
            # dict.fromkeys: drop a repeated name, keep the listed order.
            pools[class_id] = tuple(dict.fromkeys(loaded[fold].get(class_id, [])))
        self._pools = pools
        self._queries = None
        if self.training:
            self._natural_length = len({name for names in pools.values() for name in names})
        else:
            self._natural_length = DEFAULT_EVAL_EPISODES

    def _paths(self, name: str) -> tuple[Path, Path]:
        image = self._base / name
        return image, (self._base / "annotations" / name).with_suffix(".png")

    def _binarise(self, labels: np.ndarray, class_id: int) -> tuple[np.ndarray, np.ndarray]:
        # Pixel = COCO class index + 1 (0 background); COCO has no ignore band.
        return (labels == class_id + 1).astype(np.uint8), np.zeros_like(labels, dtype=np.uint8)
