"""One pass over episodes: the training epoch and the 1-/k-shot evaluation loop, with their metrics."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Callable, Iterable

import numpy as np
import torch

from hmfs.metrics import IoUAccumulator, classify_prediction
from hmfs.model import HSNet

log = logging.getLogger(__name__)


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on `device` when asked for, else a no-op context."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def query_label_pixels(query_mask: torch.Tensor, query_ignore_idx: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """Foreground and valid (non-ignored) pixels of each query label: (B,) int64 each.

    query_mask: (B, H, W) in {0, 1}; query_ignore_idx: (B, H, W), 1 where ignored (as in
    `classify_prediction`, whose foreground union this foreground count enters).
    """
    gt = query_mask.long().flatten(1)
    valid = torch.ones_like(gt, dtype=torch.bool) if query_ignore_idx is None else query_ignore_idx.flatten(1) == 0
    return {"query_fg_pixels": ((gt == 1) & valid).sum(dim=1), "query_valid_pixels": valid.sum(dim=1)}


def run_epoch(
    model: HSNet,
    loader: Iterable[dict],
    accumulator: IoUAccumulator,
    device: torch.device,
    optimizer: torch.optim.Optimizer | None = None,
    bf16: bool = False,
    log_every: int = 50,
    label: str = "",
    first_step: int = 0,
    on_step: Callable[[int], None] | None = None,
) -> None:
    """Train (when `optimizer` is given) or validate the 1-shot model over `loader`, as HSNet does.

    Each batch: logits on support 0, cross-entropy against `query_mask`, argmax prediction scored
    against the label (ignoring `query_ignore_idx`). Results accumulate in `accumulator`.
    `first_step`: batches of this pass already done (a resumed epoch); `on_step(step)` is called
    after every batch with the number of batches done so far.
    """
    training = optimizer is not None
    model.train_mode() if training else model.eval()
    started = time.perf_counter()
    with torch.set_grad_enabled(training):
        for step, batch in enumerate(loader, start=first_step + 1):
            batch = to_device(batch, device)
            with autocast(device, bf16):
                logits = model(batch["query_img"], batch["support_imgs"][:, 0], batch["support_masks"][:, 0])
            logits = logits.float()
            loss = model.compute_objective(logits, batch["query_mask"])
            if training:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            area_inter, area_union = classify_prediction(
                logits.argmax(dim=1), batch["query_mask"], batch.get("query_ignore_idx")
            )
            accumulator.update(area_inter, area_union, batch["class_id"], loss.item())
            if on_step is not None:
                on_step(step)
            if log_every and step % log_every == 0:
                log.info(
                    "%s step %d: loss %.4f, mIoU %.2f, %.2f s/step", label, step, accumulator.mean_loss(),
                    accumulator.miou(), (time.perf_counter() - started) / (step - first_step),
                )


@torch.no_grad()
def evaluate_episodes(
    model: HSNet,
    loader: Iterable[dict],
    accumulator: IoUAccumulator,
    shot: int,
    device: torch.device,
    bf16: bool = False,
    keep_predictions: int = 0,
    log_every: int = 100,
) -> dict:
    """Score k-shot predictions of every episode of `loader`; returns timings (and kept predictions).

    With `org_query_imsize` in the batch (original-size labels, batch size 1) the logits are
    resized to the label's size before the argmax, as HSNet's `use_original_imgsize`.
    """
    model.eval()
    predictions: list[dict] = []
    batch_seconds, episodes_per_batch = [], []
    wait_seconds = 0.0
    started = time.perf_counter()
    ready = time.perf_counter()
    for step, batch in enumerate(loader, start=1):
        wait_seconds += time.perf_counter() - ready
        begin = time.perf_counter()
        batch = to_device(batch, device)
        out_size = None
        if "org_query_imsize" in batch:
            out_size = tuple(int(v) for v in batch["query_mask"].shape[-2:])
        with autocast(device, bf16):
            pred = model.predict_mask_nshot(
                batch["query_img"], batch["support_imgs"][:, :shot], batch["support_masks"][:, :shot], out_size
            )
        area_inter, area_union = classify_prediction(pred, batch["query_mask"], batch.get("query_ignore_idx"))
        per_episode = {}
        if accumulator.keep_episodes:  # counted only then: training validation keeps sums alone
            pixels = query_label_pixels(batch["query_mask"], batch.get("query_ignore_idx"))
            per_episode = {"episode": batch["episode"], **pixels}
        accumulator.update(area_inter, area_union, batch["class_id"], **per_episode)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        batch_seconds.append(time.perf_counter() - begin)
        episodes_per_batch.append(pred.shape[0])
        for b in range(pred.shape[0]):
            if len(predictions) >= keep_predictions:
                break
            predictions.append({
                "episode": int(batch["episode"][b]),
                "class_id": int(batch["class_id"][b]),
                "query_name": batch["query_name"][b],
                "support_names": [names[b] for names in batch["support_names"]][:shot],
                "pred": pred[b].to(torch.uint8).cpu().numpy(),
            })
        if log_every and step % log_every == 0:
            log.info("evaluated %d episodes, mIoU so far %.2f", sum(episodes_per_batch), accumulator.miou())
        ready = time.perf_counter()
    total = time.perf_counter() - started
    per_episode = [s / n for s, n in zip(batch_seconds, episodes_per_batch)]
    timings = {
        "seconds_total": total,
        "seconds_waiting_for_data": wait_seconds,
        "ms_per_episode": 1000 * sum(batch_seconds) / max(1, sum(episodes_per_batch)),
        "ms_per_episode_median": 1000 * float(np.median(per_episode)) if per_episode else None,
    }
    return {"timings": timings, "predictions": predictions}
