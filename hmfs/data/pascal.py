"""PASCAL-5i episodes: VOC2012 images with SegmentationClassAug masks, HSNet's fold lists."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from hmfs.data.episodes import DEFAULT_EVAL_EPISODES, EpisodeDataset
from hmfs.data.splits import (  # noqa: F401 (PASCAL_CLASSES, pascal_fold_classes: importable from here too)
    BENCHMARK_FOLDS, PASCAL_CLASSES, PASCAL_NCLASS, load_pascal_split, pascal_fold_classes, pascal_split_file,
)

PASCAL_NFOLDS = BENCHMARK_FOLDS["pascal"]
IGNORE_LABEL = 255  # VOC's boundary / difficult band


class PascalEpisodes(EpisodeDataset):
    """PASCAL-5i: training on fold k reads the other three `trn` lists; evaluation reads `val/fold{k}`.

    Training: one episode per listed (image, class) pair. Evaluation: `num_episodes` (default 1000)
    episodes cycling over the fold's pairs. `class_ids` (evaluation) may name any PASCAL classes; the
    pairs of each are read from the `val` list of the fold that tests it (for COCO -> PASCAL tests
    whose kept classes span several PASCAL folds). Images are named by VOC id.
    """

    benchmark = "pascal"
    nfolds = PASCAL_NFOLDS
    layout = "DATA/VOC2012/JPEGImages/<id>.jpg and DATA/VOC2012/SegmentationClassAug/<id>.png"

    def _build_index(self, requested: Sequence[int] | None) -> None:
        voc = self.data_root / "VOC2012"
        self._image_dir = voc / "JPEGImages"
        self._mask_dir = voc / "SegmentationClassAug"
        self._require_folders(self._image_dir, self._mask_dir)
        self.nclass = PASCAL_NCLASS
        fold_classes = pascal_fold_classes(self.fold)
        if self.training:
            self.class_ids = [c for c in range(self.nclass) if c not in fold_classes]
            lists = [pascal_split_file(self.splits_dir, "trn", k) for k in range(self.nfolds) if k != self.fold]
        else:
            self.class_ids = self._select_classes(requested, fold_classes)
            folds = sorted({c // len(fold_classes) for c in self.class_ids})
            lists = [pascal_split_file(self.splits_dir, "val", k) for k in folds]
        wanted = set(self.class_ids)
        pools: dict[int, list[str]] = {c: [] for c in self.class_ids}
        positions: dict[tuple[str, int], int] = {}
        queries = []
        for path in lists:
            for name, class_id in load_pascal_split(path):
                if class_id not in wanted:
                    if self.training:
                        # Only a corrupted list puts a test class in a training list: refuse it.
                        raise ValueError(f"{path}: class {class_id + 1} belongs to test fold {self.fold}")
                    continue
                key = (name, class_id)
                if key not in positions:  # a repeated line is one image, not two
                    positions[key] = len(pools[class_id])
                    pools[class_id].append(name)
                    queries.append((name, class_id, positions[key]))
        self._pools = {c: tuple(names) for c, names in pools.items()}
        self._queries = queries
        self._natural_length = len(queries) if self.training else DEFAULT_EVAL_EPISODES

    def _paths(self, name: str) -> tuple[Path, Path]:
        return self._image_dir / f"{name}.jpg", self._mask_dir / f"{name}.png"

    def _binarise(self, labels: np.ndarray, class_id: int) -> tuple[np.ndarray, np.ndarray]:
        # Pixel == class + 1 is foreground; 255 is ignored in the metrics and is background here.
        return (labels == class_id + 1).astype(np.uint8), (labels == IGNORE_LABEL).astype(np.uint8)

    def class_label(self, class_id: int) -> str:
        return f"{class_id} ({PASCAL_CLASSES[class_id]})"
