"""`python -m hmfs evaluate`: 1-shot / k-shot mIoU and FB-IoU of a checkpoint, into one JSON file."""

from __future__ import annotations

import argparse
import io
import logging
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from hmfs.data import PASCAL_CLASSES, build_dataset
from hmfs.engine import evaluate_episodes
from hmfs.metrics import IoUAccumulator
from hmfs.options import add_common_model_args, resolve_splits_dir
from hmfs.model import HSNet, load_hsnet_checkpoint
from hmfs.model.checkpoint import (backbone_state_dict, check_checkpoint_backbone, check_finite_weights, checkpoint_metadata,
                                   read_checkpoint)
from hmfs.runtime import atomic_write_bytes, atomic_write_json, environment, resolve_device, sha256_file

log = logging.getLogger(__name__)


def evaluate(
    *,
    benchmark: str,
    data_root: Path,
    splits_dir: Path,
    fold: int,
    backbone: str,
    masking: str,
    checkpoint: Path,
    backbone_weights: Path | None = None,
    random_backbone: bool = False,
    backbone_from_checkpoint: bool = False,
    checkpoint_origin: str = "trained",
    shot: int = 1,
    split: str | None = None,
    img_size: int = 400,
    episodes: int | None = None,
    seed: int = 0,
    batch_size: int = 1,
    num_workers: int = 0,
    device: str = "cpu",
    precision: str = "fp32",
    use_original_imgsize: bool = False,
    class_ids: list[int] | None = None,
    keep_predictions: int = 0,
    keep_smallest: int = 0,
) -> tuple[dict, list[dict]]:
    """Evaluate `checkpoint` on `episodes` test episodes; returns (result dict, kept predictions).

    The result holds mIoU, FB-IoU, per-class IoU and episode counts, the seed, the checkpoint's
    sha256, origin ("trained" here or "released" by the authors) and the epoch / validation mIoU it
    stores, timings, the arguments and the environment. Episode i depends only on (seed, i).
    Kept predictions: the first `keep_predictions` episodes and the `keep_smallest` episodes with
    the smallest query target (`hmfs.engine.SmallestTargets`: Fig. 4's rule).
    With `backbone_from_checkpoint` the frozen backbone is the `backbone.*` weights inside the
    checkpoint (released HSNet / HM files carry the ImageNet weights their authors used).
    """
    if split is None:  # the paper's test split: FSS-1000's test classes, the fold's classes otherwise
        split = "test" if benchmark == "fss" else "val"
    if shot < 1:
        raise ValueError(f"shot must be >= 1, got {shot}")
    if checkpoint_origin not in ("trained", "released"):
        raise ValueError(f"checkpoint origin must be 'trained' or 'released', got {checkpoint_origin!r}")
    if use_original_imgsize and batch_size != 1:
        raise ValueError("original-size labels differ in size between episodes: use --batch-size 1")
    torch_device = resolve_device(device)
    dataset = build_dataset(
        benchmark, data_root, splits_dir, fold, split, shot, img_size, seed, num_episodes=episodes,
        use_original_imgsize=use_original_imgsize, class_ids=class_ids,
    )
    state = read_checkpoint(checkpoint)
    check_finite_weights(state, checkpoint)
    for key, wanted in (("backbone", backbone), ("masking", masking)):
        if isinstance(state.get(key), str) and state[key] != wanted:
            raise ValueError(f"{checkpoint} was trained with {key} {state[key]!r}, not {wanted!r}: pass --{key} {state[key]}")
    carries_backbone = check_checkpoint_backbone(state, backbone, checkpoint)
    if backbone_from_checkpoint:
        if not carries_backbone:
            raise ValueError(f"{checkpoint} carries no backbone.* weights: pass --backbone-weights instead of "
                             "--backbone-from-checkpoint")
        backbone_weights = None
    backbone_sha = sha256_file(backbone_weights) if backbone_weights else None
    if "backbone_weights_sha256" in state and not backbone_from_checkpoint:  # trained here: the same frozen backbone
        if backbone_sha != state["backbone_weights_sha256"]:
            def describe(sha: str | None) -> str:
                return "a random backbone" if sha is None else f"backbone weights with sha256 {sha[:12]}…"
            raise ValueError(f"{checkpoint} was trained on {describe(state['backbone_weights_sha256'])}, but this "
                             f"evaluation has {describe(backbone_sha)}"
                             f"{f' ({backbone_weights})' if backbone_weights else ''}: pass the weights it was trained with")
    model = HSNet(backbone, masking, backbone_state_dict(state) if backbone_from_checkpoint else backbone_weights,
                  random_backbone=random_backbone, use_original_imgsize=use_original_imgsize)
    load_hsnet_checkpoint(model, state)
    model.to(torch_device).eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=torch_device.type == "cuda", **({"prefetch_factor": 4} if num_workers else {}))
    accumulator = IoUAccumulator(dataset.class_ids, dataset.nclass, keep_episodes=True)
    log.info("evaluating %s (%s, %s) on %s fold %d: %d-shot, %d episodes",
             checkpoint, backbone, masking, benchmark, fold, shot, len(dataset))
    run = evaluate_episodes(model, loader, accumulator, shot, torch_device, precision, keep_predictions,
                            keep_smallest=keep_smallest)
    result = {
        **accumulator.summary(),
        "benchmark": benchmark, "fold": fold, "split": split, "shot": shot, "backbone": backbone,
        "masking": masking, "seed": seed, "img_size": img_size, "use_original_imgsize": use_original_imgsize,
        "class_ids": list(dataset.class_ids), "device": str(torch_device), "precision": precision, "batch_size": batch_size,
        "checkpoint": str(checkpoint), "checkpoint_sha256": sha256_file(checkpoint),
        "checkpoint_origin": checkpoint_origin,
        **{f"checkpoint_{key}": value for key, value in checkpoint_metadata(state).items()},
        "backbone_weights": "checkpoint" if backbone_from_checkpoint else str(backbone_weights) if backbone_weights else None,
        "backbone_weights_sha256": backbone_sha,
        "random_backbone": random_backbone,
        "timings": run["timings"],
        "environment": environment(),
    }
    log.info("%d-shot mIoU %.2f, FB-IoU %.2f over %d episodes (%.0f ms/episode)", shot, result["miou"],
             result["fb_iou"], result["episodes"], run["timings"]["ms_per_episode"])
    return result, run["predictions"]


def save_predictions(path: Path, predictions: list[dict]) -> None:
    """Kept predictions as one .npz: pred (N, H, W) uint8 plus per-row arrays: kind ("first": the
    first episodes, in order; "smallest": the smallest query targets, smallest first), episode,
    class_id, query_name, support_names (N, shot), query_fg_pixels and query_valid_pixels (the
    query label's counts; -1 where not counted). An episode kept for both reasons has two rows."""
    buffer = io.BytesIO()

    def counts(key: str) -> np.ndarray:
        return np.array([-1 if p.get(key) is None else p[key] for p in predictions], dtype=np.int64)

    np.savez_compressed(
        buffer,
        pred=np.stack([p["pred"] for p in predictions]) if predictions else np.zeros((0, 0, 0), np.uint8),
        kind=np.array([p.get("kind", "first") for p in predictions], dtype=str),
        episode=np.array([p["episode"] for p in predictions], dtype=np.int64),
        class_id=np.array([p["class_id"] for p in predictions], dtype=np.int64),
        query_name=np.array([p["query_name"] for p in predictions], dtype=str),
        support_names=np.array([p["support_names"] for p in predictions], dtype=str),
        query_fg_pixels=counts("query_fg_pixels"),
        query_valid_pixels=counts("query_valid_pixels"),
    )
    atomic_write_bytes(path, buffer.getvalue())


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help="1-shot / k-shot mIoU and FB-IoU of a checkpoint")
    add_common_model_args(parser, backbone_from_checkpoint=True)
    parser.set_defaults(batch_size=1)
    parser.add_argument("--checkpoint", required=True, type=Path, help="hmfs best.pt/last.pt, or an official HSNet/HM .pt")
    parser.add_argument("--checkpoint-origin", default="trained", choices=["trained", "released"],
                        help="recorded in the result: trained by this pipeline, or released by the paper's authors")
    parser.add_argument("--shot", type=int, default=1)
    parser.add_argument("--split", default=None, choices=["val", "test"],
                        help="default: FSS-1000 test (the paper's), PASCAL/COCO val (the fold's classes)")
    parser.add_argument("--episodes", type=int, default=None,
                        help="test episodes (default: PASCAL/COCO 1000, FSS-1000 every test image once)")
    parser.add_argument("--seed", type=int, default=0, help="episode seed (HSNet tests with 0)")
    parser.add_argument("--use-original-imgsize", action="store_true", help="score against original-size labels")
    classes = parser.add_mutually_exclusive_group()
    classes.add_argument("--class-ids", type=int, nargs="+", default=None, help="restrict to these classes (indices)")
    classes.add_argument("--class-names", nargs="+", default=None,
                         help="PASCAL only: restrict to these classes by name (Table 4: `aeroplane boat ...`)")
    parser.add_argument("--out", required=True, type=Path, help="result JSON")
    parser.add_argument("--predictions", type=Path, default=None, help="also save the first predictions (.npz)")
    parser.add_argument("--num-predictions", type=int, default=16, help="--predictions keeps the first N episodes")
    parser.add_argument("--num-smallest-predictions", type=int, default=0,
                        help="--predictions also keeps the N episodes with the smallest query target (foreground / "
                             "valid pixels of the label, ties by episode index, empty targets left out; Fig. 4)")
    parser.set_defaults(func=run_evaluate)


def class_ids_from_names(benchmark: str, names: list[str]) -> list[int]:
    """PASCAL class names -> indices (0 = aeroplane); an unknown name is an error that lists the known ones."""
    if benchmark != "pascal":
        raise ValueError(f"--class-names is for PASCAL only; for {benchmark} pass --class-ids")
    unknown = [name for name in names if name not in PASCAL_CLASSES]
    if unknown:
        raise ValueError(f"unknown PASCAL classes {unknown}; accepted: {', '.join(PASCAL_CLASSES)}")
    return [PASCAL_CLASSES.index(name) for name in names]


def run_evaluate(args: argparse.Namespace) -> int:
    if args.class_names:
        args.class_ids = class_ids_from_names(args.benchmark, args.class_names)
    result, predictions = evaluate(
        benchmark=args.benchmark, data_root=args.data_root, splits_dir=resolve_splits_dir(args.splits_dir),
        fold=args.fold, backbone=args.backbone, masking=args.masking, checkpoint=args.checkpoint,
        backbone_weights=args.backbone_weights, random_backbone=args.random_backbone,
        backbone_from_checkpoint=args.backbone_from_checkpoint, checkpoint_origin=args.checkpoint_origin, shot=args.shot,
        split=args.split, img_size=args.img_size, episodes=args.episodes, seed=args.seed,
        batch_size=args.batch_size, num_workers=args.num_workers, device=args.device, precision=args.precision,
        use_original_imgsize=args.use_original_imgsize, class_ids=args.class_ids,
        keep_predictions=args.num_predictions if args.predictions else 0,
        keep_smallest=args.num_smallest_predictions if args.predictions else 0,
    )
    if args.predictions:
        save_predictions(args.predictions, predictions)
    atomic_write_json(args.out, result)
    return 0
