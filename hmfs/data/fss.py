"""FSS-1000 episodes: one folder per class with <n>.jpg images and <n>.png masks, HSNet's class lists."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from hmfs.data.episodes import EpisodeDataset
from hmfs.data.splits import fss_split_file, load_fss_split
from hmfs.data.transforms import load_mask

FSS_MASK_THRESHOLD = 128  # HSNet: mask >= 128 is foreground after converting to grey


def _image_order(file_name: str) -> tuple[int, int, str]:
    stem = file_name.rsplit(".", 1)[0]
    return (0, int(stem), stem) if stem.isdigit() else (1, 0, stem)


class FssEpisodes(EpisodeDataset):
    """FSS-1000: `trn`, `val` and `test` are disjoint class lists (520/240/240); no folds (fold 0).

    Every image of every class is the query of one episode (10 x classes; `num_episodes` changes the
    length), with `shot` distinct supports from the same class folder. `class_id` indexes the
    split's class list sorted by name, as HSNet sorts it; `nclass` is that list's length. Images are
    named `<class>/<n>.jpg`. The class folders are listed once, at construction.
    """

    benchmark = "fss"
    nfolds = 1
    layout = "DATA/FSS-1000/<class>/<n>.jpg and DATA/FSS-1000/<class>/<n>.png"

    def _build_index(self, requested: Sequence[int] | None) -> None:
        self._base = self.data_root / "FSS-1000"
        self._require_folders(self._base)
        self.categories = sorted(load_fss_split(fss_split_file(self.splits_dir, self.split)))
        if len(set(self.categories)) != len(self.categories):
            raise ValueError(f"{fss_split_file(self.splits_dir, self.split)}: a class is listed twice")
        self.nclass = len(self.categories)
        self.class_ids = self._select_classes(requested, list(range(self.nclass)))
        pools, queries = {}, []
        for class_id in self.class_ids:
            folder = self._base / self.categories[class_id]
            try:
                files = sorted((e.name for e in os.scandir(folder) if e.name.endswith(".jpg")), key=_image_order)
            except FileNotFoundError:
                raise FileNotFoundError(f"FSS-1000 class folder not found: {folder}; expected {self.layout}") from None
            names = tuple(f"{self.categories[class_id]}/{f}" for f in files)
            pools[class_id] = names
            queries += [(name, class_id, pos) for pos, name in enumerate(names)]
        self._pools = pools
        self._queries = queries
        self._natural_length = len(queries)

    def _paths(self, name: str) -> tuple[Path, Path]:
        image = self._base / name
        return image, image.with_suffix(".png")

    def _read_mask(self, path: Path) -> np.ndarray:
        return load_mask(path, to_grey=True)

    def _binarise(self, labels: np.ndarray, class_id: int) -> tuple[np.ndarray, np.ndarray]:
        return (labels >= FSS_MASK_THRESHOLD).astype(np.uint8), np.zeros_like(labels, dtype=np.uint8)

    def class_label(self, class_id: int) -> str:
        return f"{class_id} ({self.categories[class_id]})"
