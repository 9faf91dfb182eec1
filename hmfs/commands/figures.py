"""`python -m hmfs figures`: Figs. 4-7 and a runtime plot, drawn from result files (Fig. 6: weights and data) only."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from hmfs.names import BENCHMARKS, NUM_FOLDS
from hmfs.report.figures import plot_convergence, plot_runtime
from hmfs.report.figures_episodes import plot_feature_maps, plot_qualitative, plot_small_targets
from hmfs.report.inputs import ResultFiles
from hmfs.runtime import atomic_write_json

log = logging.getLogger(__name__)


def _write_summary(out: Path, summary: dict) -> int:
    atomic_write_json(out.with_suffix(".json"), summary)
    log.info("wrote %s", out)
    return 0


def _common(sub: argparse.ArgumentParser, results: bool) -> None:
    """The figure's benchmark, variants and output; `results`: the results folder its prediction files are in."""
    if results:
        sub.add_argument("--results", required=True, type=Path, help="results folder holding <benchmark>/<backbone>/...")
    sub.add_argument("--benchmark", required=True, choices=BENCHMARKS)
    sub.add_argument("--variants", required=True, nargs="+", help="LABEL=VARIANT, e.g. HSNet=fm HMFS=hm")
    sub.add_argument("--out", required=True, type=Path, help="PNG file; a .json of the plotted numbers goes beside it")


def _grid(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--backbones", required=True, nargs="+")
    sub.add_argument("--folds", type=int, nargs="+", default=list(range(NUM_FOLDS)))


def _episodes(sub: argparse.ArgumentParser, rows: str) -> None:
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


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("figures", help="draw the paper's figures from result files (no training)",
                                   description=__doc__)
    figures = parser.add_subparsers(dest="figure", required=True, metavar="FIGURE")

    convergence = figures.add_parser("convergence", help="Fig. 7: validation mIoU per epoch")
    _common(convergence, results=False)
    _grid(convergence)
    convergence.add_argument("--histories", required=True, nargs="+", type=Path, metavar="FILE",
                             help="the runs' history.jsonl files (the rule's inputs): every training seed's, for the band")
    convergence.set_defaults(func=lambda a: _write_summary(a.out, plot_convergence(
        ResultFiles(histories=a.histories), a.benchmark, a.backbones, a.folds, a.variants, a.out)))

    runtime = figures.add_parser("runtime", help="ms per test episode by masking")
    _common(runtime, results=False)
    _grid(runtime)
    runtime.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    runtime.add_argument("--claimed-overhead", type=float, default=None, help="the paper's HM overhead (0.40)")
    runtime.add_argument("--evaluations", required=True, nargs="+", type=Path, metavar="FILE",
                         help="the evaluation JSON files whose timings are drawn (the rule's inputs)")
    runtime.set_defaults(func=lambda a: _write_summary(a.out, plot_runtime(
        ResultFiles(a.evaluations), a.benchmark, a.backbones, a.folds, a.variants, a.shots, a.out, a.claimed_overhead)))

    for name, help_text, rows, plot in (
            ("qualitative", "Fig. 5 style: the same episodes under each masking",
             "rows: the first N episodes kept by every variant", plot_qualitative),
            ("small-targets", "Fig. 4: predictions on the test episodes with the smallest targets",
             "rows: the N smallest targets (the files keep evaluate --num-smallest-predictions)", plot_small_targets)):
        sub = figures.add_parser(name, help=help_text)
        _common(sub, results=True)
        _episodes(sub, rows)
        sub.set_defaults(func=lambda a, plot=plot: _write_summary(a.out, plot(
            a.results, a.benchmark, a.backbone, a.fold, a.variants, a.data_root, a.splits_dir, a.img_size, a.seed,
            a.episodes, a.out, a.evaluation_episodes)))

    maps = figures.add_parser("feature-maps", help="Fig. 6: first channel of the FM and IM support feature maps")
    maps.add_argument("--benchmark", required=True, choices=BENCHMARKS)
    maps.add_argument("--out", required=True, type=Path, help="PNG file; a .json of the plotted numbers goes beside it")
    _episodes(maps, "")
    maps.add_argument("--backbone-weights", required=True, type=Path, help="the frozen backbone's weights file")
    maps.add_argument("--episode", type=int, default=0, help="show support 0 of this 1-shot test episode")
    maps.add_argument("--layers", nargs="+", default=["layer34", "layer50"],
                      help="the paper's ResNet-50 layer names (weighted layers counted from conv1 = 1; fc = layer50)")
    maps.set_defaults(func=lambda a: _write_summary(a.out, plot_feature_maps(
        a.benchmark, a.backbone, a.backbone_weights, a.fold, a.data_root, a.splits_dir, a.img_size, a.seed,
        a.episode, a.layers, a.out, a.evaluation_episodes)))
