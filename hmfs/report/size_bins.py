"""Scores by target size: episodes in bins of the query's foreground fraction, and the paired b - a per bin with its interval."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hmfs.report import stats


@dataclass(frozen=True)
class BinDifference:
    """One target-size bin: fractions in [low_edge, high_edge), the paired episodes in it (foreground
    union > 0 in both), their mean foreground IoU x 100 under a and b, and b - a with its interval."""

    bin: int
    low_edge: float
    high_edge: float
    episodes: int
    iou_a: float
    iou_b: float
    difference: stats.Estimate


def tercile_edges(fractions: np.ndarray) -> np.ndarray:
    """(2,) float64 edges splitting the finite fractions (N,) into thirds.

    Compute them once from the reference evaluation (FM, the baseline) and pass the same edges
    for every method compared, so a bin holds the same episodes whichever model is scored.
    """
    finite = np.asarray(fractions, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if len(finite) == 0:
        raise ValueError("no known foreground fractions: the evaluation predates query_fg_fraction")
    return np.quantile(finite, [1 / 3, 2 / 3])


def size_bins(fractions: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(N,) int64 bin of each fraction (N,): k where edges[k-1] <= f < edges[k] (0 below edges[0],
    len(edges) at or above the last edge); -1 where the fraction is unknown (NaN)."""
    fractions = np.asarray(fractions, dtype=np.float64)
    bins = np.searchsorted(np.asarray(edges, dtype=np.float64), fractions, side="right").astype(np.int64)
    bins[np.isnan(fractions)] = -1
    return bins


def episode_fg_iou(records: stats.EpisodeRecords) -> np.ndarray:
    """(N,) float64 foreground IoU of each episode (inter_fg / union_fg), NaN where union_fg is 0."""
    union = records.union[:, 1].astype(np.float64)
    return np.divide(records.intersection[:, 1], union, out=np.full(len(union), np.nan), where=union > 0)


def paired_bin_difference(a: stats.EpisodeRecords, b: stats.EpisodeRecords, edges: np.ndarray,
                          n_resamples: int = stats.DEFAULT_RESAMPLES, seed: int = 0,
                          confidence: float = 0.95) -> list[BinDifference]:
    """Per target-size bin, mean per-episode foreground IoU of b minus a (x 100), paired.

    edges: fixed beforehand (`tercile_edges` of the FM evaluation); bins come from the query
    foreground fraction, which a and b must share. Episodes with a foreground union of 0 in
    either evaluation are left out. The interval uses `paired_difference`'s class-stratified
    resamples (same seed, same indices); each resample's bin mean is over the episodes drawn.
    """
    stats.check_paired(a, b)
    if not np.allclose(a.query_fg_fraction, b.query_fg_fraction, rtol=0, atol=1e-6, equal_nan=True):
        raise ValueError(f"{a.label} and {b.label} have different query foreground fractions for the same episodes")
    iou_a, iou_b = episode_fg_iou(a), episode_fg_iou(b)
    bins = size_bins(a.query_fg_fraction, edges)
    used = np.isfinite(iou_a) & np.isfinite(iou_b) & (bins >= 0)
    difference = np.where(used, iou_b - iou_a, 0.0) * 100
    n_bins = len(edges) + 1
    member = (bins[:, None] == np.arange(n_bins)) & used[:, None]  # (N, n_bins)
    sums = stats.resampled_sums(np.concatenate([difference[:, None] * member, member], axis=1),
                                stats.resample_indices(a.class_id, n_resamples, seed), None)  # (R, 2 * n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        resampled = sums[:, :n_bins] / sums[:, n_bins:]  # NaN for a resample that drew no episode of a bin
    bounds = np.r_[-np.inf, edges, np.inf]
    out = []
    for k in range(n_bins):
        inside = member[:, k]
        if not inside.any():
            raise ValueError(f"size bin {k} [{bounds[k]}, {bounds[k + 1]}) holds no episode of {a.label}")
        out.append(BinDifference(k, float(bounds[k]), float(bounds[k + 1]), int(inside.sum()),
                                 float(iou_a[inside].mean() * 100), float(iou_b[inside].mean() * 100),
                                 stats.estimate(float(difference[inside].mean()), resampled[:, k], confidence)))
    return out
