"""Fig. 7 (convergence, with its band over training seeds) and the runtime plot, drawn from the result files handed in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hmfs.names import MASKINGS
from hmfs.pipeline.grid import Evaluation, Run, run_folds
from hmfs.report.inputs import ResultFiles
from hmfs.report.plotting import colour_of, labelled_variants, plt, read_history, save_figure

DRAWN_SEED = 0  # the training seed whose runs the figures draw (every table trains it; hmfs.pipeline.checks)


def _drawn(run: Run, benchmark: str, backbones: list[str], folds: list[str], labelled: list[tuple[str, str]]) -> bool:
    """Whether a figure of `benchmark`, backbones x variants x folds, draws from `run` (a trained one)."""
    return (run.origin == "trained" and run.benchmark == benchmark and run.backbone in backbones and run.fold in folds
            and any(run.variant == variant for _, variant in labelled))


def _owner(figure: str, benchmark: str, backbones: list[str], folds: list[str], labelled: list[tuple[str, str]]) -> str:
    return (f"{figure} ({benchmark}; backbones {', '.join(backbones)}; variants {', '.join(v for _, v in labelled)}; "
            f"folds {', '.join(folds)})")


def _histories_by_fold(files: ResultFiles, benchmark: str, backbone: str, variant: str,
                       folds: list[str]) -> list[dict[int, Path]]:
    """Per fold, training seed -> the history.jsonl handed in for that run."""
    return [{run.seed: path for run, path in files.histories.items()
             if (run.benchmark, run.backbone, run.variant, run.fold) == (benchmark, backbone, variant, fold)}
            for fold in folds]


def seed_band(ax, per_fold: list[dict[int, Path]], backbone: str, variant: str, colour: str) -> dict:
    """Fig. 7's spread over training seeds, drawn on `ax` when a run has two or more.

    per_fold: each fold's histories by training seed. For every seed with a history in every fold,
    the validation mIoU per epoch averaged over the folds; fills the band between the lowest and the
    highest of those curves (epochs all seeds reached). Returns {"<backbone>/<variant>/seeds": numbers
    drawn} for a figure's summary, {} for one seed.
    """
    seeds = sorted(set.intersection(*(set(found) for found in per_fold))) if per_fold else []
    if len(seeds) < 2:
        return {}
    curves = []
    for seed in seeds:
        folds_curves = [[h["val_miou"] for h in read_history(found[seed])] for found in per_fold]
        length = min(len(c) for c in folds_curves)
        curves.append(np.mean([c[:length] for c in folds_curves], axis=0))
    length = min(len(c) for c in curves)
    stacked = np.stack([c[:length] for c in curves])  # (S, epochs)
    epochs = np.arange(1, length + 1)
    ax.fill_between(epochs, stacked.min(axis=0), stacked.max(axis=0), color=colour, alpha=0.18, linewidth=0,
                    label=f"{variant}: range over {len(seeds)} training seeds")
    return {f"{backbone}/{variant}/seeds": {"seeds": seeds, "epochs": length, "mean": stacked.mean(axis=0).tolist(),
                                            "low": stacked.min(axis=0).tolist(), "high": stacked.max(axis=0).tolist()}}


def plot_convergence(files: ResultFiles, benchmark: str, backbones: list[str], folds: list[int],
                     variants: list[str], out: Path) -> dict:
    """Fig. 7: validation mIoU per epoch (mean over folds, thin lines per fold), one panel per backbone;
    the band over training seeds where the histories handed in hold several."""
    labelled, fold_names = labelled_variants(variants), run_folds(benchmark, folds)
    files.refuse_extra(lambda evaluation: False, _owner("Fig. 7", benchmark, backbones, fold_names, labelled),
                       lambda run: _drawn(run, benchmark, backbones, fold_names, labelled))
    fig, axes = plt.subplots(1, len(backbones), figsize=(4.2 * len(backbones), 3.2), squeeze=False)
    summary = {}
    for ax, backbone in zip(axes[0], backbones):
        for label, variant in labelled:
            per_fold = _histories_by_fold(files, benchmark, backbone, variant, fold_names)
            summary.update(seed_band(ax, per_fold, backbone, variant, colour_of(variant)))
            curves = []
            for found in per_fold:
                if DRAWN_SEED not in found:
                    continue
                history = read_history(found[DRAWN_SEED])
                epochs = [h["epoch"] + 1 for h in history]
                curve = [h["val_miou"] for h in history]
                ax.plot(epochs, curve, color=colour_of(variant), alpha=0.25, linewidth=0.8)
                curves.append(curve)
            if not curves:
                continue
            length = min(len(c) for c in curves)
            mean = np.mean([c[:length] for c in curves], axis=0)
            ax.plot(range(1, length + 1), mean, color=colour_of(variant), linewidth=2,
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


def plot_runtime(files: ResultFiles, benchmark: str, backbones: list[str], folds: list[int], variants: list[str],
                 shots: list[int], out: Path, claimed_overhead: float | None) -> dict:
    """Median ms per test episode by masking (from the evaluation timings), per backbone and shot."""
    labelled, fold_names = labelled_variants(variants), run_folds(benchmark, folds)
    files.refuse_extra(lambda e: _drawn(e.run, benchmark, backbones, fold_names, labelled) and e.run.seed == DRAWN_SEED
                       and e.test_benchmark == benchmark and e.shot in shots,
                       _owner("the runtime plot", benchmark, backbones, fold_names, labelled) + f", training seed "
                       f"{DRAWN_SEED}, shots {', '.join(map(str, shots))}")
    fig, axes = plt.subplots(1, len(backbones), figsize=(4.2 * len(backbones), 3.2), squeeze=False)
    summary = {}
    baseline, hybrid = MASKINGS[0], MASKINGS[-1]  # FM (HSNet) and HM (the paper's): the overhead in the title
    for ax, backbone in zip(axes[0], backbones):
        width = 0.8 / max(1, len(labelled))
        for i, (label, variant) in enumerate(labelled):
            heights = []
            for shot in shots:
                times = []
                for fold in fold_names:
                    run = Run(benchmark, backbone, variant, fold, seed=DRAWN_SEED)
                    path = files.evaluations.get(Evaluation(run, shot, benchmark))
                    if path is not None:
                        times.append(json.loads(path.read_text())["timings"]["ms_per_episode"])
                heights.append(float(np.median(times)) if times else np.nan)
                summary[f"{backbone}/{variant}/{shot}shot"] = heights[-1]
            xs = np.arange(len(shots)) + (i - (len(labelled) - 1) / 2) * width
            ax.bar(xs, heights, width, label=label, color=colour_of(variant))
            for x, h in zip(xs, heights):
                if np.isfinite(h):
                    ax.text(x, h, f"{h:.0f}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(shots)), [f"{s}-shot" for s in shots])
        ax.set_ylabel("ms per episode (median over folds)")
        base = summary.get(f"{backbone}/{baseline}/1shot")
        other = summary.get(f"{backbone}/{hybrid}/1shot")
        title = f"{benchmark} {backbone}"
        if base and other and np.isfinite(base) and np.isfinite(other):
            title += f"\n1-shot {hybrid.upper()} vs {baseline.upper()}: {100 * (other / base - 1):+.0f}%"
            if claimed_overhead is not None:
                title += f" (paper: +{100 * claimed_overhead:.0f}%)"
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    save_figure(fig, out)
    return summary
