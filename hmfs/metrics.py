"""HSNet's metrics: per-class sums of foreground/background intersection and union, then mIoU and FB-IoU."""

from __future__ import annotations

from typing import Sequence

import torch

_EPISODE_KEYS = ("episode", "class_id", "intersection", "union", "query_fg_pixels", "query_valid_pixels")


def classify_prediction(
    pred_mask: torch.Tensor, query_mask: torch.Tensor, query_ignore_idx: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-episode intersection and union of background (column 0) and foreground (column 1).

    pred_mask, query_mask: (B, H, W) in {0, 1}; query_ignore_idx: (B, H, W), 1 where the label is
    ignored (PASCAL's 255 band), excluded from both prediction and label as in HSNet.
    Returns (area_inter, area_union), each (B, 2) int64.
    """
    pred = pred_mask.long().flatten(1)
    gt = query_mask.long().flatten(1)
    if query_ignore_idx is None:
        valid = torch.ones_like(gt, dtype=torch.bool)
    else:
        valid = query_ignore_idx.flatten(1) == 0
        if bool(((~valid) & (gt == 1)).any()):
            raise ValueError("query_ignore_idx overlaps the foreground of query_mask")
    inter, union = [], []
    for value in (0, 1):
        p = (pred == value) & valid
        g = (gt == value) & valid
        i = (p & g).sum(dim=1)
        inter.append(i)
        union.append(p.sum(dim=1) + g.sum(dim=1) - i)
    return torch.stack(inter, dim=1), torch.stack(union, dim=1)


class IoUAccumulator:
    """Sums intersection/union per class over all episodes of a run (never per-episode means).

    class_ids: the classes of the fold/split the scores are over (HSNet's `class_ids_interest`);
    nclass: the number of classes of the benchmark (size of the buffers). Counts are int64, so
    sums over thousands of 400x400 episodes stay exact (the reference sums in float32).
    keep_episodes: also keep every episode's own counts (for bootstrap intervals, `hmfs.report.stats`);
    off for training and validation, whose state and summaries stay the size of the sums.
    """

    def __init__(self, class_ids: Sequence[int], nclass: int, keep_episodes: bool = False):
        self.class_ids = list(class_ids)
        bad = [c for c in self.class_ids if not 0 <= c < nclass]
        if bad:
            raise ValueError(f"class ids {bad} outside 0..{nclass - 1}")
        self.nclass = nclass
        self.intersection = torch.zeros(2, nclass, dtype=torch.int64)  # (bg/fg, class)
        self.union = torch.zeros(2, nclass, dtype=torch.int64)
        self.episodes = torch.zeros(nclass, dtype=torch.int64)
        self.loss_sum = 0.0
        self.loss_count = 0
        self.keep_episodes = keep_episodes
        # One tensor per batch, concatenated on demand: episode index, class id (B,); intersection,
        # union (B, 2); query label foreground and valid pixels (B,), -1 where not given.
        self._kept: dict[str, list[torch.Tensor]] = {key: [] for key in _EPISODE_KEYS}

    def update(
        self,
        area_inter: torch.Tensor,
        area_union: torch.Tensor,
        class_id: torch.Tensor,
        loss: float | None = None,
        episode: torch.Tensor | Sequence[int] | None = None,
        query_fg_pixels: torch.Tensor | None = None,
        query_valid_pixels: torch.Tensor | None = None,
        batches: int = 1,
    ) -> None:
        """Add a batch: area_inter, area_union (B, 2); class_id (B,); loss: the batch's mean loss.

        With keep_episodes only: episode (B,) episode indices (default: the running count);
        query_fg_pixels, query_valid_pixels (B,): the query label's foreground and non-ignored
        pixels, for its foreground fraction (unknown when not given). batches: how many batches `loss`
        counts as (a data-parallel rank adds its share of a global batch's loss, and only rank 0 counts it).
        """
        class_id = class_id.long().cpu().view(-1)
        self.intersection.index_add_(1, class_id, area_inter.long().cpu().t())
        self.union.index_add_(1, class_id, area_union.long().cpu().t())
        self.episodes.index_add_(0, class_id, torch.ones_like(class_id))
        if loss is not None:  # HSNet reports the plain mean of the batch losses
            self.loss_sum += float(loss)
            self.loss_count += batches
        if self.keep_episodes:
            size = class_id.numel()
            if episode is None:
                done = sum(t.numel() for t in self._kept["episode"])
                episode = torch.arange(done, done + size)
            pixels = {"query_fg_pixels": query_fg_pixels, "query_valid_pixels": query_valid_pixels}
            rows = {
                "episode": torch.as_tensor(episode).long().cpu().view(-1),
                "class_id": class_id,
                "intersection": area_inter.long().cpu().view(size, 2),
                "union": area_union.long().cpu().view(size, 2),
                **{key: torch.full((size,), -1, dtype=torch.int64) if value is None else value.long().cpu().view(-1)
                   for key, value in pixels.items()},
            }
            wrong = {key: tuple(value.shape) for key, value in rows.items() if value.shape[0] != size}
            if wrong:
                raise ValueError(f"per-episode inputs {wrong} do not match the batch of {size} episodes")
            for key, value in rows.items():
                self._kept[key].append(value.clone())

    def _episode_tensors(self) -> dict[str, torch.Tensor]:
        """The kept episodes, concatenated: (N,) or (N, 2) int64 per key."""
        empty = {"intersection": torch.zeros(0, 2, dtype=torch.int64), "union": torch.zeros(0, 2, dtype=torch.int64)}
        return {key: torch.cat(parts) if parts else empty.get(key, torch.zeros(0, dtype=torch.int64))
                for key, parts in self._kept.items()}

    def state_dict(self) -> dict:
        """The running sums (and the kept episodes), to resume an interrupted pass."""
        state = {"intersection": self.intersection.clone(), "union": self.union.clone(),
                 "episodes": self.episodes.clone(), "loss_sum": self.loss_sum, "loss_count": self.loss_count}
        if self.keep_episodes:
            state.update({f"episode_{key}": value for key, value in self._episode_tensors().items()})
        return state

    def load_state_dict(self, state: dict) -> None:
        self.intersection = state["intersection"].clone()
        self.union = state["union"].clone()
        self.episodes = state["episodes"].clone()
        self.loss_sum, self.loss_count = float(state["loss_sum"]), int(state["loss_count"])
        if self.keep_episodes:
            missing = [f"episode_{key}" for key in _EPISODE_KEYS if f"episode_{key}" not in state]
            if missing:  # the sums would cover episodes the records lack
                raise ValueError(f"state has no per-episode records ({missing}); it was saved without keep_episodes")
            self._kept = {key: [state[f"episode_{key}"].clone()] for key in _EPISODE_KEYS}

    def class_iou(self) -> dict[int, float]:
        """Foreground IoU x 100 of each class of interest (0 for a class never visited)."""
        inter = self.intersection[1].double()
        union = self.union[1].double().clamp(min=1)
        return {c: float(inter[c] / union[c] * 100) for c in self.class_ids}

    def miou(self) -> float:
        """Mean over the classes of interest of the foreground IoU, x 100."""
        return sum(self.class_iou().values()) / len(self.class_ids)

    def fb_iou(self) -> float:
        """Mean over {background, foreground} of (sum inter / sum union over the classes), x 100."""
        idx = torch.tensor(self.class_ids)
        inter = self.intersection.index_select(1, idx).sum(dim=1).double()
        union = self.union.index_select(1, idx).sum(dim=1).double().clamp(min=1)
        return float((inter / union).mean() * 100)

    def mean_loss(self) -> float | None:
        return self.loss_sum / self.loss_count if self.loss_count else None

    def summary(self) -> dict:
        """A JSON-ready dict: miou, fb_iou, loss, per-class IoU and episode counts.

        With keep_episodes also `per_episode`: lists of episode index, class id, [bg, fg]
        intersection and union, and the query label's foreground fraction (foreground / non-ignored
        pixels, 6 digits; None where unknown), one entry per episode in the order scored.
        """
        summary = {
            "miou": self.miou(),
            "fb_iou": self.fb_iou(),
            "loss": self.mean_loss(),
            "class_iou": {str(c): v for c, v in self.class_iou().items()},
            "class_episodes": {str(c): int(self.episodes[c]) for c in self.class_ids},
            "episodes": int(self.episodes.sum()),
        }
        if self.keep_episodes:
            kept = self._episode_tensors()
            fractions = [round(fg / valid, 6) if fg >= 0 and valid > 0 else None
                         for fg, valid in zip(kept["query_fg_pixels"].tolist(), kept["query_valid_pixels"].tolist())]
            summary["per_episode"] = {
                "episode": kept["episode"].tolist(),
                "class_id": kept["class_id"].tolist(),
                "intersection": kept["intersection"].tolist(),
                "union": kept["union"].tolist(),
                "query_fg_fraction": fractions,
            }
        return summary
