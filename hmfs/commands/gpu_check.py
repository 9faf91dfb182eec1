"""`python -m hmfs gpu-check`: the numbers a plan needs from a GPU, in one JSON that `plan --bench` reads.

Per backbone x masking x precision: `hmfs bench` (1-shot and k-shot evaluation, a training step; median
ms) and the peak GPU memory; the training loader's episodes/s by worker count on generated 400 px
JPEGs; and, where two GPUs exist, one training epoch on one GPU and on two (torchrun, NCCL).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from hmfs.data.prepare.pascal import prepare_pascal
from hmfs.data.throughput import loader_throughput
from hmfs.model import BACKBONES, MASKINGS
from hmfs.names import PRECISIONS
from hmfs.runtime import atomic_write_json, environment
from hmfs.speed import bench
from hmfs.synthetic import generate_pascal

log = logging.getLogger(__name__)
FORMAT = "hmfs-gpu-check-v1"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("gpu-check", help="bench, memory, loader and 2-GPU numbers of this GPU, as one JSON",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu (to try the command)")
    parser.add_argument("--backbones", nargs="+", default=["resnet50", "resnet101"], choices=BACKBONES)
    parser.add_argument("--maskings", nargs="+", default=["fm", "hm"], choices=MASKINGS)
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    parser.add_argument("--img-size", type=int, default=400)
    parser.add_argument("--shot", type=int, default=5)
    parser.add_argument("--train-batch-size", type=int, default=10,
                        help="episodes per training step (COCO's global batch of 20 over two GPUs: 10)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loader-workers", type=int, nargs="+", default=[0, 1, 2, 4])
    parser.add_argument("--loader-batches", type=int, default=6, help="timed batches of 20 per worker count")
    parser.add_argument("--ddp-ranks", type=int, default=None,
                        help="also time one training epoch on this many processes against one (default: 2 where "
                             "two GPUs exist, else skipped; 0 skips)")
    parser.add_argument("--work", type=Path, default=None, help="where the generated data goes (default: a temp dir)")
    parser.add_argument("--out", type=Path, required=True, help="the JSON (read by `python -m hmfs plan --bench`)")
    parser.set_defaults(func=run_gpu_check)


def bench_all(args: argparse.Namespace) -> list[dict]:
    """One `bench` report per backbone x masking x precision; a precision the GPU lacks or an OOM is recorded as such."""
    reports = []
    for backbone in args.backbones:
        for masking in args.maskings:
            for precision in args.precisions:
                where = {"backbone": backbone, "masking": masking, "precision": precision, "img_size": args.img_size}
                if precision == "bf16" and args.device.startswith("cuda") and not torch.cuda.is_bf16_supported():
                    reports.append({**where, "error": "bf16 not supported by this GPU"})
                    continue
                try:
                    report = bench(backbone, masking, args.img_size, 1, args.shot, args.device, precision, args.repeats,
                                   1, args.train_batch_size)
                except torch.OutOfMemoryError as error:
                    reports.append({**where, "error": f"out of memory: {error}".splitlines()[0]})
                    torch.cuda.empty_cache()
                    continue
                results = report["results"]
                log.info("%s %s %s: 1-shot %.1f ms, %d-shot %.1f ms, train step (batch %d) %.1f ms, peak %s MiB",
                         backbone, masking, precision, results["eval_1shot"]["total"], args.shot,
                         results[f"eval_{args.shot}shot_query_reuse_default"]["total"], args.train_batch_size,
                         results["train_step"]["total"], report["peak_memory_mib"])
                reports.append(report)
    return reports


def generated_pascal(work: Path, img_size: int, per_class: int) -> tuple[Path, Path]:
    """A synthetic PASCAL-5i with JPEGs of about `img_size` px, prepared as the loaders read it: (data root, splits)."""
    raw, data, splits = work / "raw", work / "data", work / "splits"
    if not (data / "VOC2012").is_dir():
        generate_pascal(raw, seed=0, image_size=img_size, train_per_class=per_class, val_per_class=2, background="photos")
        prepare_pascal(raw / "VOCdevkit" / "VOC2012", raw / "benchmark_RELEASE" / "dataset", data, splits)
    return data, splits


def epoch_seconds(data: Path, splits: Path, out: Path, ranks: int, args: argparse.Namespace, episodes: int) -> float:
    """Seconds of one training epoch (ResNet-50 HM, `episodes` episodes, global batch 20) on `ranks` processes."""
    launcher = [sys.executable] if ranks == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                     f"--nproc-per-node={ranks}"]
    command = [*launcher, "-m", "hmfs", "train", "--benchmark", "pascal", "--data-root", str(data), "--splits-dir",
               str(splits), "--backbone", "resnet50", "--random-backbone", "--masking", "hm", "--img-size",
               str(args.img_size), "--batch-size", "20", "--epochs", "1", "--train-episodes", str(episodes),
               "--val-episodes", "20", "--num-workers", "4", "--device", args.device.split(":")[0], "--out", str(out)]
    began = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - began
    history = json.loads((out / "history.jsonl").read_text().splitlines()[0])
    log.info("one epoch of %d episodes on %d process(es): %.1f s (%.1f s with start-up)", episodes, ranks,
             history["seconds"], wall)
    return history["seconds"]


def run_gpu_check(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    result = {"format": FORMAT, "device": args.device, "environment": environment(), "estimate": False}
    if args.device.startswith("cuda") and torch.cuda.is_available():
        result["device_name"] = torch.cuda.get_device_name(torch.device(args.device))
    result["reports"] = bench_all(args)
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        workers = sorted(set(args.loader_workers))
        per_class = max(4, -(-(1 + 2 * max(workers) + args.loader_batches) * 20 // 15))  # fold 0: 15 training classes
        data, splits = generated_pascal(work, args.img_size, per_class)
        result["loader"] = loader_throughput("pascal", data, splits, workers, args.img_size, 20, args.loader_batches,
                                             pin_memory=args.device.startswith("cuda"))
        log.info("loader episodes/s by workers: %s", {k: round(v, 1) for k, v in result["loader"]["episodes_per_second"].items()})
        ranks = args.ddp_ranks
        if ranks is None:
            ranks = 2 if args.device.startswith("cuda") and torch.cuda.device_count() >= 2 else 0
        if ranks > 1:
            episodes = 200
            result["ddp"] = {"ranks": ranks, "episodes": episodes, "epoch_seconds": {
                n: epoch_seconds(data, splits, work / f"epoch{n}", n, args, episodes) for n in (1, ranks)}}
        else:
            result["ddp"] = {"skipped": "fewer than two GPUs" if args.ddp_ranks is None else "--ddp-ranks 0"}
    result["seconds"] = time.perf_counter() - started
    atomic_write_json(args.out, result)
    print(f"gpu-check: {len(result['reports'])} bench reports, loader and DDP numbers in {args.out} "
          f"({result['seconds']:.0f} s); the plan on them: python -m hmfs plan --bench {args.out}")
    return 0

