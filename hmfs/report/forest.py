"""The claims' forest plot, the report's summary figure: every claim's reproduced value and interval, from the claims table's JSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hmfs.report.plotting import plt, save_figure  # pyplot on the Agg backend: files only

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
