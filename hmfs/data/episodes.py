"""Shared episodic dataset: argument checks, deterministic per-episode sampling, and HSNet's batch contract."""

from __future__ import annotations

import abc
import logging
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from hmfs.data.transforms import (
    AUGMENT_OPS, check_augment_ops, load_image, load_mask, normalise_image, photometric_augment, resize_image, resize_masks,
)

log = logging.getLogger(__name__)

SPLITS = ("trn", "val", "test")
DEFAULT_EVAL_EPISODES = 1000  # HSNet's test length for PASCAL-5i and COCO-20i


@dataclass(frozen=True)
class Episode:
    """Which files make episode i: a query, `shot` supports (all of class `class_id`, none = query)."""

    query_name: str
    support_names: tuple[str, ...]
    class_id: int


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


class EpisodeDataset(Dataset, abc.ABC):
    """Few-shot episodes of one benchmark, split and fold; item i is HSNet's batch dict.

    Every random choice of episode i (class, query, supports, augmentation) comes from
    `numpy.random.default_rng([seed, epoch, i])`, so an item depends on nothing but (seed, epoch, i):
    not on batch size, worker count, order or global RNG state. `epoch` is 0 unless `set_epoch`
    is called on a training ("trn") dataset; evaluation datasets keep it 0.

    Subclasses set `benchmark`, `nfolds`, `layout` and implement `_build_index`, `_paths` and
    `_binarise`. Attributes for the trainer/evaluator: `benchmark`, `nclass` (classes of the
    benchmark / FSS split, the size of the metric buffers), `class_ids` (classes episodes are drawn
    from, the classes scored), `fold`, `split`, `shot`, `img_size`, `seed`, `epoch`.
    """

    benchmark: str = ""
    nfolds: int = 1
    layout: str = ""  # expected files under DATA, for error messages

    def __init__(
        self,
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
        augment_ops: Sequence[str] = AUGMENT_OPS,
    ):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r} for {self.benchmark}; accepted: {', '.join(SPLITS)}")
        if isinstance(fold, bool) or not isinstance(fold, numbers.Integral) or not 0 <= fold < self.nfolds:
            accepted = "0 (FSS-1000 has no folds)" if self.nfolds == 1 else f"0..{self.nfolds - 1}"
            raise ValueError(f"fold {fold!r} out of range for {self.benchmark}; accepted: {accepted}")
        self.split = split
        self.training = split == "trn"
        self.fold = int(fold)
        self.shot = _check_int("shot", shot, 1)
        self.img_size = _check_int("img_size", img_size, 1)
        self.seed = _check_int("seed", seed, 0)
        self.num_episodes = None if num_episodes is None else _check_int("num_episodes", num_episodes, 1)
        if augment and not self.training:
            raise ValueError(f"augment=True is for training only (split 'trn'), not split {split!r}")
        self.augment = bool(augment)
        self.augment_ops = check_augment_ops(augment_ops)
        self.use_original_imgsize = bool(use_original_imgsize)
        self.epoch = 0
        self.data_root = Path(data_root)
        self.splits_dir = Path(splits_dir)
        if not self.data_root.is_dir():
            raise FileNotFoundError(f"data root not found: {self.data_root}; expected {self.layout}")
        if class_ids is not None and self.training:
            raise ValueError("class_ids restricts evaluation episodes; it is not accepted with split 'trn'")

        # Filled by _build_index:
        #   nclass; class_ids; pools: class -> tuple of image names (distinct, fixed order);
        #   queries: [(name, class, position in its pool)] when the query follows the index
        #   (PASCAL, FSS), or None when each episode draws a class uniformly first (COCO);
        #   natural_length: the epoch length when num_episodes is not given.
        self.nclass: int = 0
        self.class_ids: list[int] = []
        self._pools: dict[int, tuple[str, ...]] = {}
        self._queries: list[tuple[str, int, int]] | None = None
        self._natural_length = 0
        self._build_index(class_ids)

        for class_id in self.class_ids:
            count = len(self._pools.get(class_id, ()))
            if count < self.shot + 1:
                raise ValueError(
                    f"{self.benchmark} {split} fold {self.fold}: class {self.class_label(class_id)} has {count} "
                    f"image(s); a {self.shot}-shot episode needs at least {self.shot + 1} (query + distinct supports)"
                )
        self._length = self.num_episodes if self.num_episodes is not None else self._natural_length
        log.info(
            "%s %s fold %d: %d classes, %d episodes%s", self.benchmark, split, self.fold,
            len(self.class_ids), self._length, " (augmented)" if self.augment else "",
        )

    # ---- subclass hooks ---------------------------------------------------------------------

    @abc.abstractmethod
    def _build_index(self, requested: Sequence[int] | None) -> None:
        """Read the split lists; set nclass, class_ids, _pools, _queries and _natural_length."""

    @abc.abstractmethod
    def _paths(self, name: str) -> tuple[Path, Path]:
        """(image path, mask path) of an image name."""

    @abc.abstractmethod
    def _binarise(self, labels: np.ndarray, class_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(H, W) uint8 label map -> (foreground, ignore), each (H, W) uint8 in {0, 1}."""

    def _read_mask(self, path: Path) -> np.ndarray:
        return load_mask(path)

    def _require_folders(self, *folders: Path) -> None:
        """FileNotFoundError naming the first missing folder and the expected layout."""
        for folder in folders:
            if not folder.is_dir():
                raise FileNotFoundError(f"{self.benchmark} folder not found: {folder}; expected {self.layout}")

    def class_label(self, class_id: int) -> str:
        """How a class is named in messages."""
        return str(class_id)

    # ---- public API ---------------------------------------------------------------------------

    def _select_classes(self, requested: Sequence[int] | None, default: list[int]) -> list[int]:
        """`requested` checked (distinct ints in 0..nclass-1) and sorted, or `default` when None."""
        if requested is None:
            return list(default)
        ids = list(requested)
        bad = [c for c in ids if isinstance(c, bool) or not isinstance(c, numbers.Integral) or not 0 <= c < self.nclass]
        if not ids or bad or len({int(c) for c in ids}) != len(ids):
            reason = f"outside 0..{self.nclass - 1}: {bad}" if bad else "empty or repeated"
            raise ValueError(f"class_ids {ids!r} invalid for {self.benchmark} {self.split} ({reason}); "
                             f"accepted: distinct ints in 0..{self.nclass - 1}")
        return sorted(int(c) for c in ids)

    def set_epoch(self, epoch: int) -> None:
        """Training: episodes of a new epoch draw from fresh generators. Evaluation: ignored (epoch 0).

        Call it before creating the DataLoader iterator of the epoch (workers receive a copy of the
        dataset when the iterator starts; `persistent_workers=True` would keep the old epoch).
        """
        epoch = _check_int("epoch", epoch, 0)
        if self.training:
            self.epoch = epoch

    def __len__(self) -> int:
        return self._length

    def episode_rng(self, index: int) -> np.random.Generator:
        """The generator every random choice of episode `index` is drawn from."""
        return np.random.default_rng([self.seed, self.epoch, index])

    def sample_episode(self, index: int, rng: np.random.Generator | None = None) -> Episode:
        """The names and class of episode `index` (loads no pixels). rng: `episode_rng(index)` if None."""
        if not 0 <= index < self._length:
            raise IndexError(f"episode {index} out of range 0..{self._length - 1}")
        rng = self.episode_rng(index) if rng is None else rng
        if self._queries is not None:
            n = len(self._queries)
            # Cycle when asked for more episodes than queries (HSNet's PASCAL test); spread evenly
            # over the list when asked for fewer, so a short run still visits every class.
            position = index % n if self._length >= n else index * n // self._length
            query_name, class_id, query_pos = self._queries[position]
        else:
            class_id = self.class_ids[int(rng.integers(len(self.class_ids)))]
            query_pos = int(rng.integers(len(self._pools[class_id])))
            query_name = self._pools[class_id][query_pos]
        pool = self._pools[class_id]
        # `shot` distinct positions among the pool minus the query: draw from 0..n-2, then skip it.
        picks = rng.choice(len(pool) - 1, size=self.shot, replace=False)
        support_names = tuple(pool[int(j) + (j >= query_pos)] for j in picks)
        return Episode(query_name, support_names, class_id)

    def _load(self, name: str, class_id: int) -> tuple[Image.Image, np.ndarray, np.ndarray]:
        """RGB image and its (H, W) uint8 foreground / ignore masks at the original size."""
        image_path, mask_path = self._paths(name)
        try:
            image = load_image(image_path)
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.benchmark} image not found: {image_path}; expected {self.layout}") from None
        try:
            labels = self._read_mask(mask_path)
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.benchmark} mask not found: {mask_path}; expected {self.layout}") from None
        if labels.shape != (image.height, image.width):
            raise ValueError(
                f"mask {mask_path} is {labels.shape[1]}x{labels.shape[0]} (WxH) but image {image_path} is "
                f"{image.width}x{image.height}"
            )
        foreground, ignore = self._binarise(labels, class_id)
        return image, foreground, ignore

    def _image_tensor(self, image: Image.Image, rng: np.random.Generator) -> torch.Tensor:
        """PIL RGB -> (3, S, S) float32, resized, augmented (training with augment), normalised."""
        pixels = resize_image(image, self.img_size)  # (3, S, S) uint8
        if self.augment:
            pixels = photometric_augment(pixels, rng, ops=self.augment_ops)
        return normalise_image(pixels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """HSNet's batch contract for episode `index` (S = img_size, K = shot):

        query_img (3, S, S) float32; query_mask, query_ignore_idx (S, S) float32 in {0, 1}
        (original H x W when use_original_imgsize); query_name str; support_imgs (K, 3, S, S)
        float32; support_masks, support_ignore_idxs (K, S, S) float32; support_names list[str];
        class_id int64 scalar tensor; episode int; with use_original_imgsize only,
        org_query_imsize int64 tensor [H, W] (the query file's size).
        """
        rng = self.episode_rng(index)
        episode = self.sample_episode(index, rng)
        # Augmentation draws follow the sampling draws of the same generator, so the episode's files
        # are the same with and without augmentation.
        query_image, query_fg, query_ignore = self._load(episode.query_name, episode.class_id)
        query_img = self._image_tensor(query_image, rng)
        query_masks = torch.from_numpy(np.stack([query_fg, query_ignore]))  # (2, H, W) uint8
        if not self.use_original_imgsize:
            query_masks = resize_masks(query_masks, self.img_size)  # (2, S, S)

        support_imgs, support_masks = [], []
        for name in episode.support_names:
            image, foreground, ignore = self._load(name, episode.class_id)
            support_imgs.append(self._image_tensor(image, rng))
            support_masks.append(resize_masks(torch.from_numpy(np.stack([foreground, ignore])), self.img_size))
        masks = torch.stack(support_masks).float()  # (K, 2, S, S)

        batch = {
            "query_img": query_img,
            "query_mask": query_masks[0].float(),
            "query_ignore_idx": query_masks[1].float(),
            "query_name": episode.query_name,
            "support_imgs": torch.stack(support_imgs),
            "support_masks": masks[:, 0].contiguous(),
            "support_ignore_idxs": masks[:, 1].contiguous(),
            "support_names": list(episode.support_names),
            "class_id": torch.tensor(episode.class_id, dtype=torch.int64),
            "episode": index,
        }
        if self.use_original_imgsize:
            # Only then: its presence tells the evaluator to score at the label's own size.
            batch["org_query_imsize"] = torch.tensor([query_image.height, query_image.width], dtype=torch.int64)
        return batch

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(benchmark={self.benchmark!r}, split={self.split!r}, fold={self.fold}, "
                f"shot={self.shot}, classes={len(self.class_ids)}, episodes={len(self)}, seed={self.seed})")
