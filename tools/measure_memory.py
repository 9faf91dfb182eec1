"""Peak memory (RSS) of the paper's jobs on the CPU, for the cluster resources in config.yaml; not run by pytest.

    python tools/measure_memory.py train --backbone resnet101 --batch-size 20      # one HSNet training step
    python tools/measure_memory.py evaluate --backbone resnet101 --shot 5          # one k-shot evaluation episode
    python tools/measure_memory.py loader --data-root D --splits-dir S --workers 8 # the training loader

Each prints one JSON line. Weights are random (memory does not depend on them), inputs 400x400. A
training step's activations live in GPU memory on a GPU, so its CPU peak bounds the GPU memory of a
step from above, not the host memory of a GPU job (which is the process baseline plus the loader).
Loader figures: the main process and each worker's peak RSS, and each worker's private memory
(what a cgroup charges for it beyond the pages it shares with the main process).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import torch


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:")) / 1024


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def private_mb(pid: int) -> float:
    """Private (unshared) resident memory of a process."""
    total = 0
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        for line in handle:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    return total / 1024


def measure_train(args) -> dict:
    from hmfs.model import HSNet

    torch.manual_seed(0)
    model = HSNet(args.backbone, args.masking, random_backbone=True)
    baseline = rss_mb()
    size, b = args.img_size, args.batch_size
    query, support = torch.randn(b, 3, size, size), torch.randn(b, 3, size, size)
    support_mask = (torch.rand(b, size, size) > 0.5).float()
    query_mask = (torch.rand(b, size, size) > 0.5).long()
    optimizer = torch.optim.Adam(model.hpn_learner.parameters(), lr=1e-3)
    model.train_mode()
    began = time.perf_counter()
    logits = model(query, support, support_mask)
    loss = model.compute_objective(logits, query_mask)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"what": "train step", "backbone": args.backbone, "masking": args.masking, "img_size": size,
            "batch_size": b, "baseline_rss_mb": round(baseline), "peak_rss_mb": round(peak_mb()),
            "step_peak_over_baseline_mb": round(peak_mb() - baseline),
            "seconds": round(time.perf_counter() - began, 1), "threads": torch.get_num_threads()}


def measure_evaluate(args) -> dict:
    from hmfs.model import HSNet

    torch.manual_seed(0)
    model = HSNet(args.backbone, args.masking, random_backbone=True).eval()
    baseline = rss_mb()
    size, shot = args.img_size, args.shot
    query = torch.randn(1, 3, size, size)
    supports, masks = torch.randn(1, shot, 3, size, size), (torch.rand(1, shot, size, size) > 0.5).float()
    with torch.no_grad():
        model.predict_mask_nshot(query, supports, masks)
    return {"what": f"{shot}-shot episode", "backbone": args.backbone, "masking": args.masking, "img_size": size,
            "baseline_rss_mb": round(baseline), "peak_rss_mb": round(peak_mb()),
            "episode_peak_over_baseline_mb": round(peak_mb() - baseline)}


def measure_loader(args) -> dict:
    from torch.utils.data import DataLoader

    from hmfs.data import build_dataset

    dataset = build_dataset(benchmark=args.benchmark, data_root=Path(args.data_root), splits_dir=Path(args.splits_dir),
                            fold=0, split="trn", shot=1, img_size=args.img_size, seed=0, augment=True)
    after_index = rss_mb()
    loader = DataLoader(dataset, batch_size=args.batch_size, num_workers=args.workers, shuffle=False,
                        persistent_workers=args.workers > 0)
    worker_peak, worker_private = {}, {}
    batches = 0
    for _ in loader:
        batches += 1
        for pid in map(int, Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                hwm = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) / 1024
                worker_peak[pid] = max(worker_peak.get(pid, 0), hwm)
                worker_private[pid] = max(worker_private.get(pid, 0), private_mb(pid))
            except (OSError, StopIteration):
                pass
        if batches >= args.batches:
            break
    return {"what": "training loader", "benchmark": args.benchmark, "img_size": args.img_size,
            "batch_size": args.batch_size, "workers": args.workers, "batches": batches,
            "episodes_in_split": len(dataset), "main_rss_after_index_mb": round(after_index),
            "main_peak_rss_mb": round(peak_mb()),
            "worker_peak_rss_mb": round(max(worker_peak.values(), default=0)),
            "worker_private_mb": round(max(worker_private.values(), default=0))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["train", "evaluate", "loader"])
    parser.add_argument("--backbone", default="resnet101")
    parser.add_argument("--masking", default="hm")
    parser.add_argument("--img-size", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--shot", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--benchmark", default="coco")
    parser.add_argument("--data-root")
    parser.add_argument("--splits-dir")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    measure = {"train": measure_train, "evaluate": measure_evaluate, "loader": measure_loader}[args.what]
    print(json.dumps(measure(args)))


if __name__ == "__main__":
    main()
