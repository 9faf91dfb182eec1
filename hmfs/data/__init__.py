"""Episodic few-shot datasets (PASCAL-5i, COCO-20i, FSS-1000) behind one factory, `build_dataset`."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from hmfs.data.coco import CocoEpisodes
from hmfs.data.episodes import Episode, EpisodeDataset
from hmfs.data.fss import FssEpisodes
from hmfs.data.pascal import PASCAL_CLASSES, PascalEpisodes
from hmfs.data.splits import packaged_splits_dir

BENCHMARKS = ("pascal", "coco", "fss")
_DATASETS: dict[str, type[EpisodeDataset]] = {"pascal": PascalEpisodes, "coco": CocoEpisodes, "fss": FssEpisodes}


def build_dataset(
    benchmark: str,
    data_root: Path,
    splits_dir: Path,
    fold: int,
    split: str,
    shot: int,
    img_size: int,
    seed: int,
    num_episodes: int | None = None,
    augment: bool = False,
    use_original_imgsize: bool = False,
    class_ids: Sequence[int] | None = None,
) -> EpisodeDataset:
    """The episodes of `benchmark` for one fold and split; item i is HSNet's batch dict (see EpisodeDataset).

    benchmark: pascal | coco | fss. data_root: the prepared DATA folder (VOC2012/, COCO2014/,
    FSS-1000/). splits_dir: a SPLITS folder, e.g. `packaged_splits_dir()`. fold: 0..3 (fss: 0).
    split: trn (training) | val | test (PASCAL/COCO: both are the fold's test classes; FSS: two
    different class lists). shot: supports per episode. img_size: S of the S x S inputs. seed: with
    the epoch (`set_epoch`, training) and the index, fixes every random choice of an episode.
    num_episodes: the length (default: trn = one per listed query, PASCAL/COCO val/test = 1000,
    FSS = every image once). augment: PASCAL's photometric recipe (training only).
    use_original_imgsize: keep the query mask at its file's size (batch size 1 then).
    class_ids: evaluation only, score / sample only these classes.
    """
    if benchmark not in _DATASETS:
        raise ValueError(f"unknown benchmark {benchmark!r}; accepted: {', '.join(BENCHMARKS)}")
    return _DATASETS[benchmark](
        data_root=Path(data_root), splits_dir=Path(splits_dir), fold=fold, split=split, shot=shot,
        img_size=img_size, seed=seed, num_episodes=num_episodes, augment=augment,
        use_original_imgsize=use_original_imgsize, class_ids=class_ids,
    )


__all__ = [
    "BENCHMARKS", "PASCAL_CLASSES", "CocoEpisodes", "Episode", "EpisodeDataset", "FssEpisodes", "PascalEpisodes",
    "build_dataset", "packaged_splits_dir",
]
