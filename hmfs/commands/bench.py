"""`python -m hmfs bench`: per-stage milliseconds of 1-shot and 5-shot evaluation and of a training step."""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

from hmfs.engine import autocast, learner_optimizer
from hmfs.model import BACKBONES, MASKINGS, HSNet
from hmfs.runtime import atomic_write_json, environment, resolve_device

log = logging.getLogger(__name__)


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


def bench(
    backbone: str = "resnet50", masking: str = "hm", img_size: int = 400, batch_size: int = 1, shot: int = 5,
    device: str = "cpu", bf16: bool = False, repeats: int = 5, warmup: int = 1, train_batch_size: int | None = None,
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

    model.eval()
    with torch.no_grad(), autocast(torch_device, bf16):
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

    train_bsz = train_batch_size or batch_size
    train_query = torch.randn(train_bsz, 3, *size, device=torch_device)
    train_support = torch.randn(train_bsz, 3, *size, device=torch_device)
    train_mask = (torch.rand(train_bsz, *size, device=torch_device) > 0.5).float()
    optimizer = learner_optimizer(model, 1e-3)
    model.train_mode()

    def learner_step(corr):
        with autocast(torch_device, bf16):
            logits = model.decode(corr, size)
        loss = model.compute_objective(logits.float(), train_mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    with autocast(torch_device, bf16):
        results["train_step"] = _staged([
            ("backbone", lambda _: (model.extract(train_query), model.support_features(train_support, train_mask))),
            ("correlation", lambda feats: model.correlate(*feats)),
            ("learner", learner_step),
        ], torch_device, repeats, warmup)
    return {
        "backbone": backbone, "masking": masking, "img_size": img_size, "batch_size": batch_size,
        "train_batch_size": train_bsz, "shot": shot, "device": str(torch_device), "bf16": bf16,
        "repeats": repeats, "warmup": warmup, "unit": "ms per call (median)", "results": results,
        "environment": environment(),
    }


def format_table(report: dict) -> str:
    """A plain-text table: one row per measured pass, one column per stage."""
    columns = ["backbone", "correlation", "learner", "total"]
    lines = [f"{report['backbone']} {report['masking']} {report['img_size']}x{report['img_size']} "
             f"batch {report['batch_size']} on {report['device']}{' bf16' if report['bf16'] else ''} "
             f"(median ms of {report['repeats']})",
             f"{'pass':40s}" + "".join(f"{c:>13s}" for c in columns)]
    for name, stages in report["results"].items():
        row = f"{name:40s}" + "".join(f"{stages[c]:13.1f}" if c in stages else f"{'':>13s}" for c in columns)
        lines.append(row)
    return "\n".join(lines)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="per-stage timings (backbone, correlation, learner) on this device")
    parser.add_argument("--backbone", default="resnet50", choices=BACKBONES)
    parser.add_argument("--masking", default="hm", choices=MASKINGS)
    parser.add_argument("--img-size", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=1, help="episodes per evaluation call")
    parser.add_argument("--train-batch-size", type=int, default=None, help="episodes per training step (default: --batch-size)")
    parser.add_argument("--shot", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=None, help="write the report as JSON")
    parser.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    report = bench(args.backbone, args.masking, args.img_size, args.batch_size, args.shot, args.device, args.bf16,
                   args.repeats, args.warmup, args.train_batch_size)
    print(format_table(report))
    if args.out:
        atomic_write_json(args.out, report)
    return 0
