"""Frozen-backbone features of un-augmented episode images, computed once per image and re-used every epoch."""

from __future__ import annotations

import logging
from typing import Hashable, Sequence

import torch

from hmfs.model.hsnet import HSNet
from hmfs.model.masking import get_masking, input_masking

log = logging.getLogger(__name__)


class FeatureCache:
    """The backbone maps of every image a training run sees, each computed once, on that image alone.

    The backbone is frozen and un-augmented images are the same tensor every time they are drawn,
    so their maps are too: a query's maps, a support's plain maps (FM, HM) and the maps of the
    support's input-masked image (IM, HM; the mask is fixed by the support's name and class) are
    stored at the first use and read afterwards. Each image is run through the backbone alone
    (batch of one), so a stored map does not depend on which images shared its batch: a resumed run,
    whose cache starts empty, computes exactly what the uninterrupted one did. Only valid for
    datasets without augmentation (the caller's duty: `hmfs.training.loop` uses it for validation always
    and for training only without `--augment`). Beyond `max_bytes` of stored maps, further images are
    computed and not kept.
    """

    def __init__(self, model: HSNet, max_bytes: int = 2 << 30):
        self.model = model
        self.max_bytes = max_bytes
        self._maps: dict[Hashable, list[torch.Tensor]] = {}
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._full_logged = False

    def __len__(self) -> int:
        return len(self._maps)

    def extract(self, imgs: torch.Tensor, keys: Sequence[Hashable]) -> list[torch.Tensor]:
        """Backbone maps of imgs (B, 3, H, W), one (B, C, h, w) tensor per feature; keys[b] names image b."""
        if len(keys) != imgs.shape[0]:
            raise ValueError(f"{len(keys)} keys for a batch of {imgs.shape[0]} images")
        rows = []
        for b, key in enumerate(keys):
            maps = self._maps.get(key)
            if maps is None:
                self.misses += 1
                maps = [f[0] for f in self.model.extract(imgs[b:b + 1])]  # (C, h, w) each
                self._store(key, maps)
            else:
                self.hits += 1
            rows.append(maps)
        return [torch.stack([row[level] for row in rows]) for level in range(len(rows[0]))]

    def _store(self, key: Hashable, maps: list[torch.Tensor]) -> None:
        size = sum(m.numel() * m.element_size() for m in maps)
        if self.bytes + size > self.max_bytes:
            if not self._full_logged:
                log.info("feature cache full at %d images (%.0f MiB): later images are computed each time",
                         len(self._maps), self.bytes / 2**20)
                self._full_logged = True
            return
        self._maps[key] = [m.clone() for m in maps]  # own storage: not a view into a larger tensor
        self.bytes += size

    def support_features(self, support_img: torch.Tensor, support_mask: torch.Tensor, names: Sequence[str],
                         class_ids: Sequence[int]) -> list[torch.Tensor]:
        """Masked support maps as `HSNet.support_features`, from the cache.

        support_img (B, 3, H, W), support_mask (B, H, W) in {0, 1}; names[b], class_ids[b]: the
        support image b and the class its mask shows.
        """
        strategy = get_masking(self.model.masking)
        mask = support_mask.float()
        plain_keys = [("image", name) for name in names]
        masked_keys = [("input_masked", name, int(c)) for name, c in zip(names, class_ids)]
        with torch.no_grad():
            masked = self.extract(input_masking(support_img, mask), masked_keys) if strategy.masked_input else None
            plain = self.extract(support_img, plain_keys) if strategy.plain else None
            return strategy.combine(plain, masked, mask)

    def forward(self, batch: dict) -> torch.Tensor:
        """1-shot logits (B, 2, H, W) of an episode batch (HSNet's keys), on support 0, as `HSNet.forward`."""
        model = self.model
        query_feats = self.extract(batch["query_img"], [("image", name) for name in batch["query_name"]])
        class_ids = batch["class_id"].tolist() if torch.is_tensor(batch["class_id"]) else list(batch["class_id"])
        support_feats = self.support_features(batch["support_imgs"][:, 0], batch["support_masks"][:, 0],
                                              batch["support_names"][0], class_ids)
        corr = model.correlate(query_feats, support_feats)
        size = None if model.use_original_imgsize else tuple(batch["support_imgs"].shape[-2:])
        return model.decode(corr, size)

    def summary(self) -> str:
        return f"{len(self._maps)} images kept ({self.bytes / 2**20:.0f} MiB), {self.hits} hits, {self.misses} computed"
