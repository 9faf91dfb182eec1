"""Episodes per second of a training loader (JPEG decode, resize, masks, augmentation) by number of worker processes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from torch.utils.data import DataLoader

from hmfs.data import build_dataset


def loader_throughput(benchmark: str, data_root: Path, splits_dir: Path, workers: Sequence[int] = (0, 1, 2),
                      img_size: int = 400, batch_size: int = 20, batches: int = 6, augment: bool = False,
                      pin_memory: bool = False) -> dict:
    """Episodes/s of the 1-shot training loader of fold 0 with each worker count, in the steady state.

    Left out: the batches that start-up and prefetching can have ready (1 + 2 x workers); then
    `batches` more are timed together. Per worker: the rate / workers (what a GPU step needs decides
    the count). 0 workers loads in the training process itself.
    """
    dataset = build_dataset(benchmark, data_root, splits_dir, fold=0, split="trn", shot=1, img_size=img_size, seed=0,
                            augment=augment)
    rates = {}
    for count in workers:
        warm = 1 + 2 * count
        if len(dataset) < (warm + batches) * batch_size:
            raise ValueError(f"{benchmark} at {data_root} has {len(dataset)} training episodes, fewer than the "
                             f"{warm + batches} batches of {batch_size} this measurement takes; lower the batches")
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=count, pin_memory=pin_memory,
                            **({"prefetch_factor": 2} if count else {}))
        iterator = iter(loader)
        for _ in range(warm):
            next(iterator)
        begin = time.perf_counter()
        for _ in range(batches):
            next(iterator)
        rates[count] = batches * batch_size / (time.perf_counter() - begin)
        del iterator
    return {"benchmark": benchmark, "img_size": img_size, "batch_size": batch_size, "augment": augment,
            "timed_batches": batches, "episodes_per_second": rates,
            "per_worker": {count: rate / count for count, rate in rates.items() if count}}


def workers_needed(episodes_per_second_per_worker: float, step_episodes_per_second: float) -> int:
    """Workers that keep up with a GPU training `step_episodes_per_second` (rounded up, plus one spare)."""
    if episodes_per_second_per_worker <= 0:
        raise ValueError("the loader rate per worker must be positive")
    return int(-(-step_episodes_per_second // episodes_per_second_per_worker)) + 1
