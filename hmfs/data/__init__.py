"""Episodic few-shot datasets (PASCAL-5i, COCO-20i, FSS-1000) behind one factory, `build_dataset`.

The dataset classes (and with them torch) are imported on first use, so commands that only read
files (`prepare`, `verify-data`, `generate`) start without torch; `hmfs.data.splits` and
`hmfs.data.images` never import it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from hmfs.data.splits import PASCAL_CLASSES, packaged_splits_dir
from hmfs.names import BENCHMARKS

if TYPE_CHECKING:
    from hmfs.data.episodes import EpisodeDataset

_CLASSES = {"CocoEpisodes": "hmfs.data.coco", "Episode": "hmfs.data.episodes", "EpisodeDataset": "hmfs.data.episodes",
            "FssEpisodes": "hmfs.data.fss", "PascalEpisodes": "hmfs.data.pascal"}
_DATASETS = {"pascal": "PascalEpisodes", "coco": "CocoEpisodes", "fss": "FssEpisodes"}


def __getattr__(name: str) -> Any:
    """The dataset classes, imported when first asked for (PEP 562)."""
    if name in _CLASSES:
        return getattr(importlib.import_module(_CLASSES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    augment_ops: Sequence[str] | None = None,
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
    class_ids: evaluation only, score / sample only these classes. augment_ops: the recipe's ops that
    may apply (None: all seven; `hmfs.data.transforms.AUGMENT_OPS`).
    """
    if benchmark not in _DATASETS:
        raise ValueError(f"unknown benchmark {benchmark!r}; accepted: {', '.join(BENCHMARKS)}")
    return __getattr__(_DATASETS[benchmark])(
        data_root=Path(data_root), splits_dir=Path(splits_dir), fold=fold, split=split, shot=shot,
        img_size=img_size, seed=seed, num_episodes=num_episodes, augment=augment,
        use_original_imgsize=use_original_imgsize, class_ids=class_ids,
        **({} if augment_ops is None else {"augment_ops": augment_ops}),
    )


__all__ = [
    "BENCHMARKS", "PASCAL_CLASSES", "CocoEpisodes", "Episode", "EpisodeDataset", "FssEpisodes", "PascalEpisodes",
    "build_dataset", "packaged_splits_dir",
]
