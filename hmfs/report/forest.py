"""`python -m hmfs forest`: the claims' forest plot (the report's summary figure), and Fig. 7's band over training seeds."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display; set before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hmfs.report.plotting import save_figure  # noqa: E402

log = logging.getLogger(__name__)

VERDICT_COLOURS = {"supported": "#1a7f37", "contradicted": "#b42318", "inconclusive": "#777777"}
PAPER_COLOUR = "#d62728"
# One panel per unit, in this order: (kind, axis label, the value of "no difference").
PANELS = (("paired_difference", "b − a, mIoU points (paired, mean over folds)", 0.0),
          ("small_targets", "b − a, foreground IoU points by target size", 0.0),
          ("convergence", "speed-up: epochs(a) / epochs(b) (log scale)", 1.0),
          ("runtime", "runtime overhead of b over a, %", 0.0))


def _row_label(result: dict) -> str:
    shot = "" if result["shot"] is None else f", {result['shot']}-shot"
    released = " (released)" if result["evidence"] == "released" else ""
    return f"{result['comparison']}{released} · {result['backbone']}{shot}"


def plot_claims_forest(numbers: dict, out: Path) -> dict:
    """Every evaluated claim as a row: its reproduced value (dot) and interval (bar), coloured by
    verdict, the paper's value (diamond; hollow on the synthetic benchmark, where it is not
    compared) and the line of no difference; one panel per kind of claim. Returns what it drew."""
    results = [r for r in numbers["results"] if r["point"] is not None]
    panels = [(kind, label, null, [r for r in results if r["kind"] == kind]) for kind, label, null in PANELS]
    panels = [p for p in panels if p[3]]
    if not panels:
        fig, ax = plt.subplots(figsize=(7, 1.5))
        ax.text(0.5, 0.5, "no claim could be evaluated yet (see the claims table)", ha="center", va="center")
        ax.axis("off")
        save_figure(fig, out)
        return {"rows": []}
    heights = [len(p[3]) + 1.5 for p in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 0.26 * sum(heights) + 1.2), squeeze=False,
                             gridspec_kw={"height_ratios": heights}, layout="constrained")
    synthetic = numbers.get("synthetic", False)
    drawn = []
    for ax, (kind, label, null, rows) in zip(axes[:, 0], panels):
        ys = np.arange(len(rows))[::-1]
        for y, r in zip(ys, rows):
            colour = VERDICT_COLOURS.get(r["verdict"], "#bbbbbb")
            ax.plot([r["low"], r["high"]], [y, y], color=colour, linewidth=2.2, solid_capstyle="butt")
            ax.plot([r["point"]], [y], "o", color=colour, markersize=5)
            if r["paper"] is not None:
                ax.plot([r["paper"]], [y], "D", markersize=5, markeredgecolor=PAPER_COLOUR,
                        markerfacecolor="none" if synthetic else PAPER_COLOUR)
            drawn.append({"label": _row_label(r), "point": r["point"], "low": r["low"], "high": r["high"],
                          "paper": r["paper"], "verdict": r["verdict"]})
        ax.axvline(null, color="black", linewidth=0.8)
        if kind == "convergence":
            ax.set_xscale("log")
        ax.set_yticks(ys, [_row_label(r) for r in rows], fontsize=7)
        ax.set_ylim(-0.8, len(rows) - 0.2)
        ax.set_xlabel(label, fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, linewidth=2.2, marker="o", label=v) for v, c in VERDICT_COLOURS.items()]
    handles.append(Line2D([], [], linestyle="none", marker="D", markeredgecolor=PAPER_COLOUR,
                          markerfacecolor="none" if synthetic else PAPER_COLOUR,
                          label="paper's value" + (" (not compared: stand-in)" if synthetic else "")))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(numbers.get("title", "Claims"), fontsize=10)
    save_figure(fig, out)
    return {"rows": drawn}


def seed_band(ax, results: Path, benchmark: str, backbone: str, variant: str, folds: list[str],
              colour: str) -> dict:
    """Fig. 7's spread over training seeds, drawn on `ax` when a run has two or more.

    For every training seed whose history.jsonl exists in every fold (<results>/<benchmark>/
    <backbone>/<variant>/<fold>/seed<k>/), the validation mIoU per epoch averaged over the folds;
    fills the band between the lowest and the highest of those curves (epochs all seeds reached).
    Returns {"<backbone>/<variant>/seeds": numbers drawn} for a figure's summary, {} for one seed.
    """
    per_fold = []
    for fold in folds:
        folder = Path(results) / benchmark / backbone / variant / fold
        per_fold.append({int(p.parent.name[len("seed"):]): p for p in folder.glob("seed*/history.jsonl")
                         if p.parent.name[len("seed"):].isdigit()})
    seeds = sorted(set.intersection(*(set(found) for found in per_fold))) if per_fold else []
    if len(seeds) < 2:
        return {}
    curves = []
    for seed in seeds:
        folds_curves = [[json.loads(line)["val_miou"] for line in found[seed].read_text().splitlines() if line.strip()]
                        for found in per_fold]
        length = min(len(c) for c in folds_curves)
        curves.append(np.mean([c[:length] for c in folds_curves], axis=0))
    length = min(len(c) for c in curves)
    stacked = np.stack([c[:length] for c in curves])  # (S, epochs)
    epochs = np.arange(1, length + 1)
    ax.fill_between(epochs, stacked.min(axis=0), stacked.max(axis=0), color=colour, alpha=0.18, linewidth=0,
                    label=f"{variant}: range over {len(seeds)} training seeds")
    return {f"{backbone}/{variant}/seeds": {"seeds": seeds, "epochs": length, "mean": stacked.mean(axis=0).tolist(),
                                            "low": stacked.min(axis=0).tolist(), "high": stacked.max(axis=0).tolist()}}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("forest", help="the claims' forest plot, from the claims table's JSON",
                                   description=__doc__)
    parser.add_argument("--claims", required=True, type=Path, help="claims.json written by `python -m hmfs claims`")
    parser.add_argument("--out", required=True, type=Path, help="PNG file; a .json of the plotted rows goes beside it")

    def run(args: argparse.Namespace) -> int:
        from hmfs.runtime import atomic_write_json

        if not args.claims.is_file():
            raise FileNotFoundError(f"claims numbers not found: {args.claims} (written by `python -m hmfs claims`)")
        drawn = plot_claims_forest(json.loads(args.claims.read_text()), args.out)
        atomic_write_json(args.out.with_suffix(".json"), drawn)
        log.info("wrote %s (%d claims)", args.out, len(drawn["rows"]))
        return 0

    parser.set_defaults(func=run)
