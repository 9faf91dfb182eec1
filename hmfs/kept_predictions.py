"""The predictions an evaluation keeps: its first episodes, and the episodes with the smallest query targets (Fig. 4)."""

from __future__ import annotations

import heapq
from fractions import Fraction
from typing import Callable

import torch


class SmallestTargets:
    """Running selection of the `k` episodes with the smallest query target (Fig. 4's rule).

    The rule looks at the query label only, never at a prediction: episodes ordered by the query's
    foreground fraction (foreground / non-ignored pixels, compared exactly as fractions), ties by
    the smaller episode index; episodes with no foreground pixel are left out. Memory is bounded by
    `k` kept records: a max-heap whose root, the largest kept key, is the first to be replaced.
    """

    def __init__(self, k: int):
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        self.k = k
        self._heap: list[tuple[Fraction, int, int, dict]] = []  # (-fraction, -episode, arrival, record)
        self._arrivals = 0

    def __len__(self) -> int:
        """Records kept now (at most k)."""
        return len(self._heap)

    def wants(self, episode: int, fg_pixels: int, valid_pixels: int) -> bool:
        """Whether an episode with these label counts would enter the selection now."""
        if self.k == 0 or fg_pixels <= 0 or valid_pixels <= 0:
            return False
        if len(self._heap) < self.k:
            return True
        worst_fraction, worst_episode = -self._heap[0][0], -self._heap[0][1]
        return (Fraction(fg_pixels, valid_pixels), episode) < (worst_fraction, worst_episode)

    def offer(self, episode: int, fg_pixels: int, valid_pixels: int, make_record: Callable[[], dict]) -> None:
        """Keep `make_record()` (called only when kept) if the episode is among the k smallest so far."""
        if not self.wants(episode, fg_pixels, valid_pixels):
            return
        self._arrivals += 1
        item = (-Fraction(fg_pixels, valid_pixels), -episode, self._arrivals, make_record())
        if len(self._heap) < self.k:
            heapq.heappush(self._heap, item)
        else:
            heapq.heapreplace(self._heap, item)

    def selected(self) -> list[dict]:
        """The kept records, smallest target first (ties: smaller episode first)."""
        return [item[3] for item in sorted(self._heap, key=lambda item: (-item[0], -item[1]))]


def prediction_record(batch: dict, pred: torch.Tensor, counts: dict[str, list[int]] | None, b: int, shot: int,
                      kind: str) -> dict:
    """Episode `b` of a batch as a kept prediction: names, the query label's pixel counts (from
    `query_label_pixels`, as lists; None when not counted) and its (H, W) uint8 prediction; `kind`
    says why it was kept ("first" or "smallest")."""
    return {
        "kind": kind,
        "episode": int(batch["episode"][b]),
        "class_id": int(batch["class_id"][b]),
        "query_name": batch["query_name"][b],
        "support_names": [names[b] for names in batch["support_names"]][:shot],
        "query_fg_pixels": None if counts is None else int(counts["query_fg_pixels"][b]),
        "query_valid_pixels": None if counts is None else int(counts["query_valid_pixels"][b]),
        "pred": pred[b].to(torch.uint8).cpu().numpy(),
    }
