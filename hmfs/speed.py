"""Per-stage milliseconds of HSNet's 1-shot and k-shot evaluation and of a training step on a device (random weights and inputs)."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

from hmfs.engine import autocast, gradient_scaler, learner_optimizer
from hmfs.model import HSNet
from hmfs.runtime import environment, resolve_device


def _clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _median_ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


def _staged(stages: list[tuple[str, Callable]], device: torch.device, repeats: int, warmup: int) -> dict[str, float]:
    """Run the chained stages (each takes the previous one's output) and time each; medians in ms."""
    times: dict[str, list[float]] = {name: [] for name, _ in stages}
    times["total"] = []
    for run in range(warmup + repeats):
        value = None
        start = _clock(device)
        begin = start
        for name, stage in stages:
            value = stage(value)
            end = _clock(device)
            if run >= warmup:
                times[name].append(end - begin)
            begin = end
        if run >= warmup:
            times["total"].append(begin - start)
    return {name: _median_ms(samples) for name, samples in times.items()}


class PeakMemory:
    """The peak GPU memory (MiB) of each measured part, from torch's allocator (nothing on the CPU)."""

    def __init__(self, device: torch.device):
        self.device, self.peaks = device, {}
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

    def record(self, part: str) -> None:
        if self.device.type == "cuda":
            self.peaks[part] = torch.cuda.max_memory_allocated(self.device) / 2**20
            torch.cuda.reset_peak_memory_stats(self.device)


def bench(
    backbone: str = "resnet50", masking: str = "hm", img_size: int = 400, batch_size: int = 1, shot: int = 5,
    device: str = "cpu", precision: str = "fp32", repeats: int = 5, warmup: int = 1, train_batch_size: int | None = None,
) -> dict:
    """Median per-stage times (ms) of 1-shot eval, k-shot eval (query reuse vs k 1-shot passes) and a train step.

    Weights are random (speed does not depend on them); inputs are random images and masks.
    """
    torch_device = resolve_device(device)
    torch.manual_seed(0)
    model = HSNet(backbone, masking, random_backbone=True).to(torch_device)
    size = (img_size, img_size)
    query_img = torch.randn(batch_size, 3, *size, device=torch_device)
    support_imgs = torch.randn(batch_size, shot, 3, *size, device=torch_device)
    support_masks = (torch.rand(batch_size, shot, *size, device=torch_device) > 0.5).float()
    results: dict = {}
    peak = PeakMemory(torch_device)

    model.eval()
    with torch.no_grad(), autocast(torch_device, precision):
        results["eval_1shot"] = _staged([
            ("backbone", lambda _: (model.extract(query_img), model.support_features(support_imgs[:, 0], support_masks[:, 0]))),
            ("correlation", lambda feats: model.correlate(*feats)),
            ("learner", lambda corr: model.decode(corr, size).argmax(dim=1)),
        ], torch_device, repeats, warmup)
        if shot > 1:
            def naive(_):
                votes = sum(model(query_img, support_imgs[:, k], support_masks[:, k]).argmax(dim=1) for k in range(shot))
                return votes

            results[f"eval_{shot}shot_as_{shot}x1shot"] = _staged([("all", naive)], torch_device, repeats, warmup)
            for per_pass in (None, 1, shot):  # None: the default choice for this device and size
                label = "default" if per_pass is None else f"{per_pass}_per_pass"
                results[f"eval_{shot}shot_query_reuse_{label}"] = _staged([
                    ("all", lambda _: model.predict_mask_nshot(
                        query_img, support_imgs, support_masks, supports_per_pass=per_pass))
                ], torch_device, repeats, warmup)

    peak.record("evaluate")
    train_bsz = train_batch_size or batch_size
    train_query = torch.randn(train_bsz, 3, *size, device=torch_device)
    train_support = torch.randn(train_bsz, 3, *size, device=torch_device)
    train_mask = (torch.rand(train_bsz, *size, device=torch_device) > 0.5).float()
    optimizer = learner_optimizer(model, 1e-3)
    model.train_mode()

    def learner_step(corr):
        with autocast(torch_device, precision):
            logits = model.decode(corr, size)
        loss = model.compute_objective(logits.float(), train_mask)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        return loss

    scaler = gradient_scaler(torch_device, precision)
    with autocast(torch_device, precision):
        results["train_step"] = _staged([
            ("backbone", lambda _: (model.extract(train_query), model.support_features(train_support, train_mask))),
            ("correlation", lambda feats: model.correlate(*feats)),
            ("learner", learner_step),
        ], torch_device, repeats, warmup)
    peak.record("train_step")
    return {
        "backbone": backbone, "masking": masking, "img_size": img_size, "batch_size": batch_size,
        "train_batch_size": train_bsz, "shot": shot, "device": str(torch_device), "precision": precision,
        "repeats": repeats, "warmup": warmup, "unit": "ms per call (median)", "results": results,
        "peak_memory_mib": peak.peaks or None,  # GPU only: the most memory torch held in each part
        "environment": environment(),
    }
