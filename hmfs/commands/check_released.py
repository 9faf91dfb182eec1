"""`python -m hmfs check-released`: checks a folder of the authors' released checkpoints before any evaluation."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
import yaml

from hmfs.pipeline.checks import check_grid
from hmfs.pipeline.grid import Run, released_runs
from hmfs.names import BACKBONES, BENCHMARKS, FOLDED, NO_FOLD, VARIANTS, fold_names
from hmfs.model.backbone import clean_backbone_state_dict, feature_layout
from hmfs.model.checkpoint import (backbone_state_dict, check_checkpoint_backbone, checkpoint_metadata, load_learner,
                                   read_checkpoint)
from hmfs.model.learner import HPNLearner
from hmfs.pipeline.released import RELEASED_NAME, missing_released
from hmfs.runtime import atomic_write_json, sha256_file

log = logging.getLogger(__name__)


def run_of_path(released_dir: Path, path: Path) -> Run:
    """<dir>/<benchmark>/<backbone>/<variant>/<fold>/best_model.pt -> its Run; a misplaced file is a ValueError."""
    parts = path.relative_to(released_dir).parts
    layout = "<benchmark>/<backbone>/<variant>/<fold>/best_model.pt"
    if len(parts) != 5:
        raise ValueError(f"{path} is not at {released_dir}/{layout}")
    benchmark, backbone, variant, fold, _ = parts
    folds = [NO_FOLD] if benchmark not in FOLDED else [name for name in fold_names() if name != NO_FOLD]
    if benchmark not in BENCHMARKS or backbone not in BACKBONES or variant not in VARIANTS or fold not in folds:
        raise ValueError(f"{path}: folder names must follow {layout} (benchmark {'|'.join(BENCHMARKS)}, backbone "
                         f"{'|'.join(BACKBONES)}, variant {'|'.join(VARIANTS)}, fold {'|'.join(folds)})")
    return Run(benchmark, backbone, variant, fold, "released")


def compare_backbones(checkpoint_backbone: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> dict:
    """Whether a released file's backbone equals a reference ResNet state dict (e.g. torchvision's file)."""
    mine, theirs = clean_backbone_state_dict(checkpoint_backbone), clean_backbone_state_dict(reference)
    shared = sorted(set(mine) & set(theirs))
    diffs = {k: float((mine[k].double() - theirs[k].double()).abs().max()) for k in shared
             if mine[k].shape == theirs[k].shape and mine[k].numel()}
    differing = [k for k, d in diffs.items() if d > 0]
    return {"equal": not differing and set(mine) == set(theirs), "max_abs_diff": max(diffs.values(), default=None),
            "differing_tensors": len(differing), "only_in_checkpoint": sorted(set(mine) - set(theirs))[:5],
            "only_in_reference": sorted(set(theirs) - set(mine))[:5]}


def inspect(released_dir: Path, path: Path, imagenet_dir: Path | None) -> dict:
    """One released file: where it belongs, its sha256, what it stores, and every problem found."""
    report: dict = {"path": str(path), "problems": []}
    try:
        run = run_of_path(released_dir, path)
        report["run"] = run.key
        state = read_checkpoint(path)
        report["sha256"] = sha256_file(path)
        report.update(checkpoint_metadata(state))
        if not check_checkpoint_backbone(state, run.backbone, path):
            report["problems"].append("no backbone.* weights (released HSNet / HM files carry them)")
        load_learner(HPNLearner(feature_layout(run.backbone).maps_per_level), state, run.backbone)
        reference = imagenet_dir / f"{run.backbone}_imagenet.pth" if imagenet_dir else None
        if reference is not None and reference.is_file() and backbone_state_dict(state):
            report["backbone_vs_imagenet"] = compare_backbones(
                backbone_state_dict(state), torch.load(reference, map_location="cpu", weights_only=True))
    except ValueError as error:
        report["problems"].append(str(error))
    return report


def check_released(released_dir: Path, config: Path | None = None, imagenet_dir: Path | None = None) -> dict:
    """Every best_model.pt below `released_dir` inspected, plus the files `config`'s tables need and lack."""
    files = sorted(released_dir.rglob(RELEASED_NAME)) if released_dir.is_dir() else []
    reports = [inspect(released_dir, path, imagenet_dir) for path in files]
    missing: list[str] = []
    if config is not None:
        settings = yaml.safe_load(config.read_text())
        check_grid(settings)
        missing = missing_released(str(released_dir), released_runs(settings))
    return {"dir": str(released_dir), "files": reports, "missing": missing,
            "ok": not missing and bool(reports) and not any(r["problems"] for r in reports)}


def run_check(args: argparse.Namespace) -> int:
    result = check_released(args.dir, args.config, args.imagenet_dir)
    for report in result["files"]:
        meta = ", ".join(f"{k} {report[k]}" for k in ("epoch", "val_miou") if k in report)
        vs = report.get("backbone_vs_imagenet")
        same = "" if vs is None else f", backbone {'equals' if vs['equal'] else 'differs from'} torchvision's file" \
            + ("" if vs["equal"] else f" (max |diff| {vs['max_abs_diff']}, {vs['differing_tensors']} tensors)")
        status = "ok" if not report["problems"] else "PROBLEM: " + "; ".join(report["problems"])
        print(f"{report.get('run', report['path'])}: sha256 {str(report.get('sha256'))[:12]}{', ' + meta if meta else ''}"
              f"{same} -> {status}")
    if result["missing"]:
        print(f"missing ({len(result['missing'])}):\n" + "\n".join(result["missing"]))
    if args.out:
        atomic_write_json(args.out, result)
    if not result["files"] and not result["missing"]:
        raise ValueError(f"no {RELEASED_NAME} files below {args.dir} (layout: <benchmark>/<backbone>/<variant>/<fold>/"
                         f"{RELEASED_NAME}); see docs/released-weights.md")
    if not result["ok"]:
        raise ValueError(f"{args.dir}: {sum(bool(r['problems']) for r in result['files'])} file(s) with problems, "
                         f"{len(result['missing'])} missing (listed above)")
    print(f"{len(result['files'])} released checkpoints ok")
    return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("check-released", help="check a folder of released HSNet / HM checkpoints",
                                   description=__doc__)
    parser.add_argument("--dir", required=True, type=Path, help="<dir>/<benchmark>/<backbone>/<variant>/<fold>/best_model.pt")
    parser.add_argument("--config", type=Path, default=None, help="also list the files this config's tables need and lack")
    parser.add_argument("--imagenet-dir", type=Path, default=None,
                        help="folder with <backbone>_imagenet.pth (torchvision's files): compare each file's backbone to it")
    parser.add_argument("--out", type=Path, default=None, help="also write the findings as JSON")
    parser.set_defaults(func=run_check)
