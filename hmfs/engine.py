"""One pass over episodes: the training epoch and the 1-/k-shot evaluation loop, with their metrics."""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np
import torch

from hmfs.names import PRECISIONS
from hmfs.kept_predictions import SmallestTargets, prediction_record
from hmfs.metrics import IoUAccumulator, classify_prediction
from hmfs.model import HSNet
from hmfs.model.feature_cache import FeatureCache

if TYPE_CHECKING:  # the training layer's type; the engine does not import it
    from hmfs.training.distributed import Share

log = logging.getLogger(__name__)


# Arithmetic precision of the model's forward: fp32, or autocast to bf16 / fp16 (fp16 trains with a
# gradient scaler). Measured on the synthetic stand-in in docs/speed.md ("Precision").
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; accepted: {', '.join(PRECISIONS)}")
    return precision


def autocast(device: torch.device, precision: str = "fp32"):
    """Autocast to `precision` (bf16 / fp16) on `device`; fp32: a no-op context."""
    if check_precision(precision) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_AUTOCAST_DTYPES[precision])


def gradient_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """fp16 training's loss scaler (fp16's narrow range would flush small gradients to 0); None otherwise."""
    return torch.amp.GradScaler(device.type) if check_precision(precision) == "fp16" else None


def learner_optimizer(model: HSNet, lr: float) -> torch.optim.Adam:
    """HSNet's optimizer: Adam on the learner's parameters (the backbone is frozen), fused kernels.

    torch's fused Adam does the same update in one kernel per step instead of several per
    parameter: on the CPU the step of the synthetic learner (98 tensors) took 4 ms instead of 22 ms
    (`tests/model/test_model.py` checks it matches the per-parameter update). A resumed state keeps the
    implementation it was saved with (its `fused` flag comes back with its parameter groups).
    """
    return torch.optim.Adam(model.hpn_learner.parameters(), lr=lr, fused=True)


class NonFiniteStep(ArithmeticError):
    """A training step's loss or gradient is NaN or infinite; the step was not taken."""


def check_finite_step(step: int, loss: torch.Tensor, parameters: Iterable[torch.Tensor] | None = None) -> None:
    """NonFiniteStep unless the loss (and, given `parameters`, their gradients' norm) is finite.

    Under data parallelism the gradients are the ranks' average, so every rank sees the same answer
    and all stop at the same step.
    """
    if not bool(torch.isfinite(loss)):
        raise NonFiniteStep(f"step {step}: the loss is {float(loss.detach())}")
    if parameters is not None:
        grads = [p.grad for p in parameters if p.grad is not None]
        norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())
        if not bool(torch.isfinite(norm)):
            raise NonFiniteStep(f"step {step}: the loss is {float(loss.detach()):.4g} but the gradient norm is {float(norm)}")


def episode_logits(model: HSNet, batch: dict) -> torch.Tensor:
    """1-shot logits (B, 2, H, W) of a batch: query against support 0."""
    return model(batch["query_img"], batch["support_imgs"][:, 0], batch["support_masks"][:, 0])


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
    precision: str = "fp32",
    log_every: int = 50,
    label: str = "",
    first_step: int = 0,
    on_step: Callable[[int], None] | None = None,
    feature_cache: FeatureCache | None = None,
    forward: Callable[[dict], torch.Tensor] | None = None,
    shares: Sequence[Share] | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> None:
    """Train (when `optimizer` is given) or validate the 1-shot model over `loader`, as HSNet does.

    Each batch: logits on support 0, cross-entropy against `query_mask`, argmax prediction scored
    against the label (ignoring `query_ignore_idx`). Results accumulate in `accumulator`.
    `first_step`: batches of this pass already done (a resumed epoch); `on_step(step)` is called
    after every batch with the number of batches done so far. `feature_cache`: take the backbone
    maps from it (only for a loader without augmentation; see `FeatureCache`). `forward(batch)`:
    the logits, instead (a DistributedDataParallel wrapper). `shares`: per batch of `loader`, this
    data-parallel rank's share of a global batch (`hmfs.training.distributed.Share`: the weight of its
    loss in the gradient and in the reported loss; a stand-in batch is not scored). `scaler`: fp16's
    gradient scaler. A non-finite loss or gradient raises NonFiniteStep before the step is taken.
    """
    training = optimizer is not None
    model.train_mode() if training else model.eval()
    if forward is None:
        forward = feature_cache.forward if feature_cache is not None else functools.partial(episode_logits, model)
    started = time.perf_counter()
    with torch.set_grad_enabled(training):
        for step, batch in enumerate(loader, start=first_step + 1):
            batch = to_device(batch, device)
            share = None if shares is None else shares[step - first_step - 1]
            weight = 1.0 if share is None else share.weight
            with autocast(device, precision):
                logits = forward(batch)
            logits = logits.float()
            loss = model.compute_objective(logits, batch["query_mask"])
            if training:
                optimizer.zero_grad(set_to_none=True)
                weighted = loss if weight == 1.0 else loss * weight
                if scaler is not None:
                    scaler.scale(weighted).backward()
                    check_finite_step(step, loss)  # fp16: an inf gradient is the scaler's to skip
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    weighted.backward()
                    check_finite_step(step, loss, model.hpn_learner.parameters())
                    optimizer.step()
            if share is not None and not share.counted:  # a stand-in: this rank has no share of a short last batch
                if on_step is not None:
                    on_step(step)
                continue
            area_inter, area_union = classify_prediction(
                logits.argmax(dim=1), batch["query_mask"], batch.get("query_ignore_idx")
            )
            if share is None:
                accumulator.update(area_inter, area_union, batch["class_id"], loss.item())
            else:
                accumulator.update(area_inter, area_union, batch["class_id"], loss.item() * share.loss_share,
                                   batches=int(share.counts_batch))
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
    precision: str = "fp32",
    keep_predictions: int = 0,
    log_every: int = 100,
    keep_smallest: int = 0,
) -> dict:
    """Score k-shot predictions of every episode of `loader`; returns timings (and kept predictions).

    Kept predictions: the first `keep_predictions` episodes (kind "first", in order), then the
    `keep_smallest` episodes with the smallest query target (kind "smallest", `SmallestTargets`'
    rule and order); an episode may be kept under both kinds. With `org_query_imsize` in the batch
    (original-size labels, batch size 1) the logits are resized to the label's size before the
    argmax, as HSNet's `use_original_imgsize`.
    """
    model.eval()
    predictions: list[dict] = []
    smallest = SmallestTargets(keep_smallest)
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
        with autocast(device, precision):
            pred = model.predict_mask_nshot(
                batch["query_img"], batch["support_imgs"][:, :shot], batch["support_masks"][:, :shot], out_size
            )
        area_inter, area_union = classify_prediction(pred, batch["query_mask"], batch.get("query_ignore_idx"))
        per_episode, pixels, counts = {}, None, None
        if accumulator.keep_episodes or keep_smallest:  # counted only when used: training validation keeps sums alone
            pixels = query_label_pixels(batch["query_mask"], batch.get("query_ignore_idx"))
            counts = {key: value.tolist() for key, value in pixels.items()}  # one device-to-host copy per batch
        if accumulator.keep_episodes:
            per_episode = {"episode": batch["episode"], **pixels}
        accumulator.update(area_inter, area_union, batch["class_id"], **per_episode)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        batch_seconds.append(time.perf_counter() - begin)
        episodes_per_batch.append(pred.shape[0])
        for b in range(pred.shape[0]):
            if len(predictions) < keep_predictions:
                predictions.append(prediction_record(batch, pred, counts, b, shot, "first"))
            if keep_smallest:
                smallest.offer(int(batch["episode"][b]), counts["query_fg_pixels"][b], counts["query_valid_pixels"][b],
                               lambda b=b: prediction_record(batch, pred, counts, b, shot, "smallest"))
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
    return {"timings": timings, "predictions": predictions + smallest.selected()}
