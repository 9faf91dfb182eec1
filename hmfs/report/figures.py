"""`python -m hmfs figures`: Figs. 4-7 and a runtime plot, drawn from result files (Fig. 6: weights and data) only."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from hmfs.report.figures_episodes import plot_qualitative, plot_small_targets, plot_feature_maps
from hmfs.pipeline.grid import Evaluation, Run, run_folds
from hmfs.pipeline.paths import evaluation_path
from hmfs.report.plotting import COLOURS, labelled_variants, plt, read_history, save_figure
from hmfs.report.forest import seed_band

log = logging.getLogger(__name__)


def plot_convergence(results: Path, benchmark: str, backbones: list[str], folds: list[int],
                     variants: list[str], out: Path) -> dict:
    """Fig. 7: validation mIoU per epoch (mean over folds, thin lines per fold), one panel per backbone."""
    fig, axes = plt.subplots(1, len(backbones), figsize=(4.2 * len(backbones), 3.2), squeeze=False)
    summary = {}
    for ax, backbone in zip(axes[0], backbones):
        for label, variant in labelled_variants(variants):
            masking = variant.split("_")[0]
            summary.update(seed_band(ax, results, benchmark, backbone, variant, run_folds(benchmark, folds),
                                     COLOURS.get(masking, "k")))
            curves = []
            for fold in run_folds(benchmark, folds):
                path = results / Run(benchmark, backbone, variant, fold).key / "history.jsonl"
                if not path.is_file():
                    continue
                history = read_history(path)
                epochs = [h["epoch"] + 1 for h in history]
                curve = [h["val_miou"] for h in history]
                ax.plot(epochs, curve, color=COLOURS.get(masking, "k"), alpha=0.25, linewidth=0.8)
                curves.append(curve)
            if not curves:
                continue
            length = min(len(c) for c in curves)
            mean = np.mean([c[:length] for c in curves], axis=0)
            ax.plot(range(1, length + 1), mean, color=COLOURS.get(masking, "k"), linewidth=2,
                    label=f"{label} (mean of {len(curves)} folds)" if len(curves) > 1 else f"{label} (one fold)")
            best = int(np.argmax(mean))
            summary[f"{backbone}/{variant}"] = {"folds": len(curves), "epochs": length,
                                                "best_epoch": best + 1, "best_mean_val_miou": float(mean[best])}
        ax.set_title(f"{benchmark} {backbone}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation mIoU (%)")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    save_figure(fig, out)
    return summary


def plot_runtime(results: Path, benchmark: str, backbones: list[str], folds: list[int], variants: list[str],
                 shots: list[int], out: Path, claimed_overhead: float | None) -> dict:
    """Median ms per test episode by masking (from the evaluation timings), per backbone and shot."""
    fig, axes = plt.subplots(1, len(backbones), figsize=(4.2 * len(backbones), 3.2), squeeze=False)
    summary = {}
    labelled = labelled_variants(variants)
    for ax, backbone in zip(axes[0], backbones):
        width = 0.8 / max(1, len(labelled))
        for i, (label, variant) in enumerate(labelled):
            heights = []
            for shot in shots:
                times = []
                for fold in run_folds(benchmark, folds):
                    run = Run(benchmark, backbone, variant, fold)
                    path = Path(evaluation_path(str(results), Evaluation(run, shot, benchmark)))
                    if path.is_file():
                        times.append(json.loads(path.read_text())["timings"]["ms_per_episode"])
                heights.append(float(np.median(times)) if times else np.nan)
                summary[f"{backbone}/{variant}/{shot}shot"] = heights[-1]
            xs = np.arange(len(shots)) + (i - (len(labelled) - 1) / 2) * width
            ax.bar(xs, heights, width, label=label, color=COLOURS.get(variant.split("_")[0], "grey"))
            for x, h in zip(xs, heights):
                if np.isfinite(h):
                    ax.text(x, h, f"{h:.0f}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(shots)), [f"{s}-shot" for s in shots])
        ax.set_ylabel("ms per episode (median over folds)")
        base = summary.get(f"{backbone}/fm/1shot")
        hybrid = summary.get(f"{backbone}/hm/1shot")
        title = f"{benchmark} {backbone}"
        if base and hybrid and np.isfinite(base) and np.isfinite(hybrid):
            title += f"\n1-shot HM vs FM: {100 * (hybrid / base - 1):+.0f}%"
            if claimed_overhead is not None:
                title += f" (paper: +{100 * claimed_overhead:.0f}%)"
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    save_figure(fig, out)
    return summary


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("figures", help="draw the paper's figures from result files (no training)",
                                   description=__doc__)
    figures = parser.add_subparsers(dest="figure", required=True, metavar="FIGURE")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--results", required=True, type=Path, help="results folder holding <benchmark>/<backbone>/...")
        sub.add_argument("--benchmark", required=True, choices=["pascal", "coco", "fss"])
        sub.add_argument("--variants", required=True, nargs="+", help="LABEL=VARIANT, e.g. HSNet=fm HMFS=hm")
        sub.add_argument("--out", required=True, type=Path, help="PNG file; a .json of the plotted numbers goes beside it")

    convergence = figures.add_parser("convergence", help="Fig. 7: validation mIoU per epoch")
    common(convergence)
    convergence.add_argument("--backbones", required=True, nargs="+")
    convergence.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3])
    convergence.set_defaults(func=lambda a: _write_summary(a.out, plot_convergence(
        a.results, a.benchmark, a.backbones, a.folds, a.variants, a.out)))

    runtime = figures.add_parser("runtime", help="ms per test episode by masking")
    common(runtime)
    runtime.add_argument("--backbones", required=True, nargs="+")
    runtime.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3])
    runtime.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    runtime.add_argument("--claimed-overhead", type=float, default=None, help="the paper's HM overhead (0.40)")
    runtime.set_defaults(func=lambda a: _write_summary(a.out, plot_runtime(
        a.results, a.benchmark, a.backbones, a.folds, a.variants, a.shots, a.out, a.claimed_overhead)))

    def episodes(sub: argparse.ArgumentParser, rows: str) -> None:
        """The test episodes of one fold, as the evaluation drew them (same seed, length and size)."""
        sub.add_argument("--backbone", required=True)
        sub.add_argument("--fold", type=int, default=0)
        sub.add_argument("--data-root", required=True, type=Path)
        sub.add_argument("--splits-dir", type=Path, default=None)
        sub.add_argument("--img-size", type=int, required=True)
        sub.add_argument("--seed", type=int, default=0, help="the evaluation's episode seed")
        sub.add_argument("--evaluation-episodes", type=int, default=None,
                         help="the evaluation's --episodes (default: the split's natural length)")
        if rows:
            sub.add_argument("--episodes", type=int, default=4, help=rows)

    qualitative = figures.add_parser("qualitative", help="Fig. 5 style: the same episodes under each masking")
    common(qualitative)
    episodes(qualitative, "rows: the first N episodes kept by every variant")
    qualitative.set_defaults(func=lambda a: _write_summary(a.out, plot_qualitative(
        a.results, a.benchmark, a.backbone, a.fold, a.variants, a.data_root, a.splits_dir, a.img_size, a.seed,
        a.episodes, a.out, a.evaluation_episodes)))

    small = figures.add_parser("small-targets", help="Fig. 4: predictions on the test episodes with the smallest targets")
    common(small)
    episodes(small, "rows: the N smallest targets (the files keep evaluate --num-smallest-predictions)")
    small.set_defaults(func=lambda a: _write_summary(a.out, plot_small_targets(
        a.results, a.benchmark, a.backbone, a.fold, a.variants, a.data_root, a.splits_dir, a.img_size, a.seed,
        a.episodes, a.out, a.evaluation_episodes)))

    maps = figures.add_parser("feature-maps", help="Fig. 6: first channel of the FM and IM support feature maps")
    maps.add_argument("--benchmark", required=True, choices=["pascal", "coco", "fss"])
    maps.add_argument("--out", required=True, type=Path, help="PNG file; a .json of the plotted numbers goes beside it")
    episodes(maps, "")
    maps.add_argument("--backbone-weights", required=True, type=Path, help="the frozen backbone's weights file")
    maps.add_argument("--episode", type=int, default=0, help="show support 0 of this 1-shot test episode")
    maps.add_argument("--layers", nargs="+", default=["layer34", "layer50"],
                      help="the paper's ResNet-50 layer names (weighted layers counted from conv1 = 1; fc = layer50)")
    maps.set_defaults(func=lambda a: _write_summary(a.out, plot_feature_maps(
        a.benchmark, a.backbone, a.backbone_weights, a.fold, a.data_root, a.splits_dir, a.img_size, a.seed,
        a.episode, a.layers, a.out, a.evaluation_episodes)))


def _write_summary(out: Path, summary: dict) -> int:
    from hmfs.runtime import atomic_write_json

    atomic_write_json(out.with_suffix(".json"), summary)
    log.info("wrote %s", out)
    return 0
