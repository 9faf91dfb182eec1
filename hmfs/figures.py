"""`python -m hmfs figures`: Fig. 7 (convergence), a Fig. 5-style qualitative grid and a runtime plot, drawn from result files only."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display; set before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hmfs.grid import Evaluation, Run, evaluation_path, predictions_path, run_folds  # noqa: E402

log = logging.getLogger(__name__)

COLOURS = {"fm": "#1f77b4", "im": "#2ca02c", "hm": "#d62728"}
DPI = 110


def _labelled(specs: list[str]) -> list[tuple[str, str]]:
    """["HSNet=fm", "HMFS=hm"] -> [("HSNet", "fm"), ("HMFS", "hm")]; a bare "fm" labels itself."""
    out = []
    for spec in specs:
        label, sep, variant = spec.partition("=")
        out.append((label, variant) if sep else (spec, spec))
    return out


def read_history(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _save(fig, out: Path) -> None:
    from hmfs.runtime import atomic_write_bytes

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(out, tmp.read_bytes(), fsync=False)
    tmp.unlink()


def plot_convergence(results: Path, benchmark: str, backbones: list[str], folds: list[int],
                     variants: list[str], out: Path) -> dict:
    """Fig. 7: validation mIoU per epoch (mean over folds, thin lines per fold), one panel per backbone."""
    fig, axes = plt.subplots(1, len(backbones), figsize=(4.2 * len(backbones), 3.2), squeeze=False)
    summary = {}
    for ax, backbone in zip(axes[0], backbones):
        for label, variant in _labelled(variants):
            masking = variant.split("_")[0]
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
                    label=f"{label} (mean of {len(curves)} folds)")
            best = int(np.argmax(mean))
            summary[f"{backbone}/{variant}"] = {"folds": len(curves), "epochs": length,
                                                "best_epoch": best + 1, "best_mean_val_miou": float(mean[best])}
        ax.set_title(f"{benchmark} {backbone}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation mIoU (%)")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    _save(fig, out)
    return summary


def plot_runtime(results: Path, benchmark: str, backbones: list[str], folds: list[int], variants: list[str],
                 shots: list[int], out: Path, claimed_overhead: float | None) -> dict:
    """Median ms per test episode by masking (from the evaluation timings), per backbone and shot."""
    fig, axes = plt.subplots(1, len(backbones), figsize=(4.2 * len(backbones), 3.2), squeeze=False)
    summary = {}
    labelled = _labelled(variants)
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
    _save(fig, out)
    return summary


def plot_qualitative(results: Path, benchmark: str, backbone: str, fold: int, variants: list[str],
                     data_root: Path, splits_dir: Path | None, img_size: int, seed: int, num_episodes: int,
                     out: Path, evaluation_episodes: int | None = None) -> dict:
    """Fig. 5 style: support (with mask), query (with ground truth), then each masking's prediction,
    for the first `num_episodes` test episodes that every variant kept (same seed: same episodes).
    evaluation_episodes: the evaluation's episode count (None: the split's natural length), which
    decides how episode indices map to queries; each panel's query is checked against the saved name."""
    from hmfs.data import build_dataset
    from hmfs.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from hmfs.cli import resolve_splits_dir

    fold_name = run_folds(benchmark, [fold])[0]
    labelled = _labelled(variants)
    kept, names = {}, {}
    for label, variant in labelled:
        run = Run(benchmark, backbone, variant, fold_name)
        path = Path(predictions_path(str(results), Evaluation(run, 1, benchmark)))
        if not path.is_file():
            raise FileNotFoundError(f"predictions not found: {path} (written by `evaluate --predictions`)")
        with np.load(path) as saved:
            kept[label] = {int(e): p for e, p in zip(saved["episode"], saved["pred"])}
            names.update({int(e): str(n) for e, n in zip(saved["episode"], saved["query_name"])})
    episodes = sorted(set.intersection(*(set(k) for k in kept.values())))[:num_episodes]
    if not episodes:
        raise ValueError(f"the prediction files of {[v for _, v in labelled]} share no episode; evaluate them with the same seed")
    dataset = build_dataset(benchmark, data_root, resolve_splits_dir(splits_dir), fold, "test" if benchmark == "fss" else "val",
                            1, img_size, seed, num_episodes=evaluation_episodes)
    mean, std = np.array(IMAGENET_MEAN).reshape(3, 1, 1), np.array(IMAGENET_STD).reshape(3, 1, 1)

    def picture(tensor) -> np.ndarray:  # (3, H, W) normalised -> (H, W, 3) in [0, 1]
        return np.clip(tensor.numpy() * std + mean, 0, 1).transpose(1, 2, 0)

    def overlay(image: np.ndarray, mask: np.ndarray, colour=(1.0, 0.1, 0.1)) -> np.ndarray:
        shown = image.copy()
        on = mask.astype(bool)
        shown[on] = 0.45 * shown[on] + 0.55 * np.array(colour)
        return shown

    columns = ["support + mask", "query + ground truth"] + [f"{label} prediction" for label, _ in labelled]
    fig, axes = plt.subplots(len(episodes), len(columns), figsize=(2.0 * len(columns), 2.0 * len(episodes)), squeeze=False)
    summary = {}
    for r, episode in enumerate(episodes):
        item = dataset[episode]
        if item["query_name"] != names[episode]:
            raise ValueError(f"episode {episode} is {item['query_name']!r} here but {names[episode]!r} in the predictions: "
                             "pass the evaluation's --evaluation-episodes, --seed and --img-size")
        query = picture(item["query_img"])
        truth = item["query_mask"].numpy()
        panels = [overlay(picture(item["support_imgs"][0]), item["support_masks"][0].numpy(), (0.1, 0.4, 1.0)),
                  overlay(query, truth, (0.1, 0.8, 0.1))]
        ious = {}
        for label, _ in labelled:
            pred = kept[label][episode]
            panels.append(overlay(query, pred))
            valid = truth != 255
            inter = np.logical_and(pred == 1, truth == 1)[valid].sum()
            union = np.logical_or(pred == 1, truth == 1)[valid].sum()
            ious[label] = float(100 * inter / max(union, 1))
        summary[str(episode)] = ious
        for c, panel in enumerate(panels):
            ax = axes[r][c]
            ax.imshow(panel)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=8)
            if c >= 2:
                ax.set_xlabel(f"IoU {list(ious.values())[c - 2]:.0f}", fontsize=7)
        axes[r][0].set_ylabel(f"episode {episode}", fontsize=7)
    _save(fig, out)
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

    qualitative = figures.add_parser("qualitative", help="Fig. 5 style: the same episodes under each masking")
    common(qualitative)
    qualitative.add_argument("--backbone", required=True)
    qualitative.add_argument("--fold", type=int, default=0)
    qualitative.add_argument("--data-root", required=True, type=Path)
    qualitative.add_argument("--splits-dir", type=Path, default=None)
    qualitative.add_argument("--img-size", type=int, required=True)
    qualitative.add_argument("--seed", type=int, default=0, help="the evaluation's episode seed")
    qualitative.add_argument("--episodes", type=int, default=4, help="rows: the first N episodes kept by every variant")
    qualitative.add_argument("--evaluation-episodes", type=int, default=None,
                             help="the evaluation's --episodes (default: the split's natural length)")
    qualitative.set_defaults(func=lambda a: _write_summary(a.out, plot_qualitative(
        a.results, a.benchmark, a.backbone, a.fold, a.variants, a.data_root, a.splits_dir, a.img_size, a.seed,
        a.episodes, a.out, a.evaluation_episodes)))


def _write_summary(out: Path, summary: dict) -> int:
    from hmfs.runtime import atomic_write_json

    atomic_write_json(out.with_suffix(".json"), summary)
    log.info("wrote %s", out)
    return 0
