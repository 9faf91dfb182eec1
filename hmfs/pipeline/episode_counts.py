"""Episodes per training epoch, per validation and per evaluation of each run, read from the split lists (torch-free)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hmfs.data.splits import (
    coco_fold_classes, coco_split_file, fss_split_file, load_coco_split, load_fss_split, load_pascal_split,
    packaged_splits_dir, pascal_fold_classes, pascal_split_file,
)
from hmfs.names import NUM_FOLDS, fold_index
from hmfs.pipeline.grid import Evaluation, Run
from hmfs.pipeline.paths import splits_dir

DEFAULT_EVAL_EPISODES = 1000  # hmfs.data.episodes: HSNet's PASCAL-5i / COCO-20i test length (tested equal)
FSS_IMAGES_PER_CLASS = 10  # FSS-1000 (and its stand-in): every class folder holds 10 images, each one episode's query


@dataclass(frozen=True)
class Count:
    """An episode count, or None when the split lists it comes from are not there yet (`note` says why)."""

    episodes: int | None
    note: str = ""


@functools.lru_cache(maxsize=None)  # COCO's lists take a while to read; a process reads each once
def _split_length(splits: Path, benchmark: str, split: str, fold: int) -> int:
    if benchmark == "pascal":  # one episode per distinct (image, class) pair of the other folds' lists
        test = set(pascal_fold_classes(fold))
        return len({pair for k in range(NUM_FOLDS) if k != fold
                    for pair in load_pascal_split(pascal_split_file(splits, "trn", k)) if pair[1] not in test})
    if benchmark == "coco":  # one episode per distinct image listed for the fold's 60 training classes
        test = set(coco_fold_classes(fold))
        lists = load_coco_split(coco_split_file(splits, "trn", fold))
        return len({name for c, names in lists.items() if c not in test for name in names})
    return FSS_IMAGES_PER_CLASS * len(set(load_fss_split(fss_split_file(splits, split))))


class EpisodeCounter:
    """Episode counts of `config`'s runs; each split list is read once per process.

    With `data.splits: hsnet` the lists shipped in hmfs/splits are read; with `prepared` the ones
    `prepare` writes below data.root, which may not exist before the workflow has run.
    """

    def __init__(self, config: dict[str, Any], root: Path | None = None):
        self.config = config
        prepared = splits_dir(config)
        self.splits = packaged_splits_dir() if prepared is None else Path(root or ".") / prepared

    def _natural(self, benchmark: str, split: str, fold: int) -> Count:
        """The split's own length (HSNet's): what an epoch or evaluation lasts when nothing caps it."""
        if benchmark in ("pascal", "coco") and split != "trn":
            return Count(DEFAULT_EVAL_EPISODES)
        try:
            return Count(_split_length(self.splits, benchmark, split, fold))
        except FileNotFoundError:
            return Count(None, f"{benchmark} {split} lists not written yet ({self.splits}; `prepare` writes them)")

    def train_per_epoch(self, run: Run) -> Count:
        """Training episodes per epoch: the split's count, capped by `train.<benchmark>.train_episodes`."""
        cap = self.config["train"][run.benchmark].get("train_episodes")
        natural = self._natural(run.benchmark, "trn", fold_index(run.fold))
        if natural.episodes is None:
            return Count(cap, natural.note + ("; train_episodes used" if cap else ""))
        return Count(min(natural.episodes, cap) if cap else natural.episodes)

    def val_per_epoch(self, run: Run) -> Count:
        """Validation episodes per epoch: `train.<benchmark>.val_episodes`, else the val split's length."""
        val = self.config["train"][run.benchmark].get("val_episodes")
        return Count(val) if val else self._natural(run.benchmark, "val", fold_index(run.fold))

    def evaluation(self, evaluation: Evaluation) -> Count:
        """Test episodes: `evaluate.episodes.<test benchmark>`, else the test split's length."""
        benchmark = evaluation.test_benchmark
        episodes = self.config["evaluate"]["episodes"].get(benchmark)
        if episodes:
            return Count(episodes)
        return self._natural(benchmark, "test" if benchmark == "fss" else "val", fold_index(evaluation.run.fold))
