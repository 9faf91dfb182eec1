"""Interval cells of the tables: per fold, mean over folds, over training seeds, and paired differences."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hmfs.report import stats

METRICS = ("miou", "fb_iou")


@dataclass(frozen=True)
class Settings:
    """The bootstrap behind every interval: resamples, base seed (fold k uses seed + k), confidence."""

    resamples: int = stats.DEFAULT_RESAMPLES
    seed: int = 0
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.resamples < 1:
            raise ValueError(f"resamples must be >= 1, got {self.resamples}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")


@dataclass(frozen=True)
class Cell:
    """One number with its interval [low, high] and, over several training seeds, their standard
    deviation (spread; None for one seed)."""

    point: float
    low: float
    high: float
    spread: float | None = None
    seeds: int = 1

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high

    def shifted(self, by: float) -> "Cell":
        """The cell minus `by` (a reproduced number minus the paper's)."""
        return Cell(self.point - by, self.low - by, self.high - by, self.spread, self.seeds)


@dataclass(frozen=True)
class Resampled:
    """A score (mean over training seeds) with its bootstrap resamples (R,) and each seed's value (S,)."""

    point: float
    resamples: np.ndarray
    seed_points: np.ndarray

    def cell(self, confidence: float) -> Cell:
        interval = stats.estimate(self.point, self.resamples, confidence)
        seeds = len(self.seed_points)
        spread = float(np.std(self.seed_points, ddof=1)) if seeds > 1 else None
        return Cell(interval.point, interval.low, interval.high, spread, seeds)


Scores = dict[str, Resampled]  # metric ("miou", "fb_iou") -> its resampled score


class Scorer:
    """Reads each evaluation file once and bootstraps it once (per bootstrap seed).

    Fold k's evaluations are all resampled with bootstrap seed `settings.seed + k`: two maskings (or
    two training seeds) of one fold, scored on the same test episodes, draw the same episodes in
    every resample, which is what pairs them; different folds draw independently.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self._records: dict[str, stats.EpisodeRecords] = {}
        self._bootstraps: dict[tuple[str, int], stats.Bootstrap] = {}

    def records(self, path: Path | str) -> stats.EpisodeRecords:
        key = str(path)
        if key not in self._records:
            self._records[key] = stats.load_episodes(path)  # ValueError naming the file and the fix if it has none
        return self._records[key]

    def bootstrap(self, path: Path | str, fold_index: int) -> stats.Bootstrap:
        key = (str(path), fold_index)
        if key not in self._bootstraps:
            self._bootstraps[key] = stats.bootstrap(self.records(path), self.settings.resamples,
                                                    self.settings.seed + fold_index, self.settings.confidence)
        return self._bootstraps[key]


def difference(a: stats.Bootstrap, b: stats.Bootstrap) -> stats.Bootstrap:
    """b - a of two bootstraps drawn with the same resample indices: equal to
    `stats.paired_difference` of their records, without resampling again.

    Refuses (ValueError naming both) unless a and b scored the same episodes of the same classes in
    the same order and were resampled with the same seed, count and confidence.
    """
    stats.check_same_episodes(a, b, hint="; evaluate both with the same seed and episode count")
    names = f"{a.label or 'a'} and {b.label or 'b'}"
    if (a.seed, a.confidence, len(a.miou.resamples)) != (b.seed, b.confidence, len(b.miou.resamples)):
        raise ValueError(f"{names} were bootstrapped with different seeds, confidences or resample counts")
    estimates = [stats.estimate(getattr(b, m).point - getattr(a, m).point,
                           getattr(b, m).resamples - getattr(a, m).resamples, a.confidence) for m in METRICS]
    return stats.Bootstrap(*estimates, a.seed, a.confidence, f"{b.label} - {a.label}", a.episode, a.class_id)


def over_seeds(per_seed: list[stats.Bootstrap]) -> Scores:
    """One fold's training seeds (one bootstrap each, same episodes and bootstrap seed) combined:
    mean over seeds, two-stage resamples (`stats.combine_seeds`; one seed: its own bootstrap)."""
    summary = stats.combine_seeds(per_seed)
    return {m: Resampled(getattr(summary, m).point, getattr(summary, m).resamples,
                         np.array([getattr(b, m).point for b in per_seed])) for m in METRICS}


def over_folds(per_fold: list[Scores]) -> Scores:
    """Mean over folds: resample r of the mean is the mean of every fold's resample r (each fold
    drawn with its own indices); a seed's value is the mean of its folds' values."""
    if not per_fold:
        raise ValueError("no folds to average")
    counts = {len(fold[m].seed_points) for fold in per_fold for m in METRICS}
    if len(counts) != 1:
        raise ValueError(f"folds were trained with different numbers of seeds ({sorted(counts)})")
    return {m: Resampled(float(np.mean([f[m].point for f in per_fold])),
                         np.mean([f[m].resamples for f in per_fold], axis=0),
                         np.mean([f[m].seed_points for f in per_fold], axis=0)) for m in METRICS}


def fold_bootstraps(scorer: Scorer, paths: list[Path] | None, fold_index: int) -> list[stats.Bootstrap] | None:
    """One bootstrap per training seed's evaluation file of one fold; None where the fold has no files."""
    return None if not paths else [scorer.bootstrap(p, fold_index) for p in paths]


def row_cells(per_fold: list[list[stats.Bootstrap] | None], show_folds: bool, with_fb: bool,
              confidence: float) -> list[Cell | None]:
    """[fold mIoUs..., mean mIoU(, mean FB-IoU)] cells of one row and shot; per_fold: each fold's
    per-seed bootstraps, None where missing (its cell and the means are then None)."""
    folds = [None if boots is None else over_seeds(boots) for boots in per_fold]
    cells = [None if f is None else f["miou"].cell(confidence) for f in folds] if show_folds else []
    mean = None if any(f is None for f in folds) else over_folds(folds)
    cells.append(None if mean is None else mean["miou"].cell(confidence))
    if with_fb:
        cells.append(None if mean is None else mean["fb_iou"].cell(confidence))
    return cells


def paired_cells(a: list[list[stats.Bootstrap] | None], b: list[list[stats.Bootstrap] | None], show_folds: bool,
                 with_fb: bool, confidence: float) -> list[Cell | None]:
    """`row_cells` of b - a: per fold and seed the paired difference (seed k of b minus seed k of a)."""
    diffs = [None if x is None or y is None else [difference(p, q) for p, q in zip(x, y, strict=True)]
             for x, y in zip(a, b, strict=True)]
    return row_cells(diffs, show_folds, with_fb, confidence)


def fmt_cell(cell: Cell | None, signed: bool = False, missing: str = "–") -> str:
    """`38.1 ± 2.3` (± half the interval), `+4.7 ± 1.2` signed; ` (sd 0.8)` over several seeds."""
    if cell is None or math.isnan(cell.point):
        return missing
    text = f"{cell.point:+.1f}" if signed else f"{cell.point:.1f}"
    text += f" ± {cell.half_width:.1f}"
    return text + (f" (sd {cell.spread:.1f})" if cell.spread is not None else "")


def table_notes(settings: Settings, seeds: list[int], published: bool, paired: bool) -> list[str]:
    """The notes under a table that say how its intervals were made."""
    level = f"{100 * settings.confidence:g}%"
    notes = [f"± is half the {level} interval of a class-stratified bootstrap over the test episodes "
             f"({settings.resamples:,} resamples; fold k uses bootstrap seed {settings.seed} + k). The mean mIoU and "
             "FB-IoU average the folds' values; their interval averages, resample by resample, every fold's resampled "
             "score, each fold resampled with its own episodes."]
    if paired:
        notes.append("'(paired)' rows: the second masking minus the first, on the same test episodes; every resample "
                     "draws the same episodes for both, so the interval leaves out the difficulty they share.")
    if len(seeds) > 1:
        notes.append(f"Trained rows: mean over training seeds {', '.join(map(str, seeds))}; (sd x) is the standard "
                     "deviation of the seeds' values. Their interval is a two-stage bootstrap: each resample draws "
                     "the test episodes, then the seeds with replacement, and averages (hmfs.report.stats.combine_seeds).")
    if published:
        notes.append(f"† on a difference to the paper: the paper's number lies outside the reproduced {level} "
                     "interval; unmarked: inside (the CSV gives the difference's interval in its _low/_high columns).")
    return notes
