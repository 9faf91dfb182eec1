"""Scores by target size (hmfs.report.size_bins): the bins of the query's foreground fraction and the paired b - a per bin."""

from __future__ import annotations

import numpy as np
import pytest

from hmfs.report import size_bins
from tests.report.test_stats import make_records


def test_size_bins_and_their_paired_differences():
    edges = np.array([0.1, 0.3])
    fractions = np.array([0.0, 0.0999, 0.1, 0.2, 0.3, 0.9, np.nan])
    assert size_bins.size_bins(fractions, edges).tolist() == [0, 0, 1, 1, 2, 2, -1]
    assert size_bins.tercile_edges(np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, np.nan])) == pytest.approx([0.3, 0.5])

    # Small targets (fg 20 px): b gains 10 IoU points; medium (80 px): nothing; large (300 px): loses 5.
    small = [((20, 10, 15), (20, 12, 14))]  # IoU a 10/25 = 0.4, b 12/22
    medium = [((80, 40, 60), (80, 40, 60))]
    large = [((300, 200, 250), (300, 175, 225))]  # IoU a 200/350, b 175/350
    empty = [((0, 0, 0), (0, 0, 5))]  # no union in a: left out
    pairs = (small * 4 + medium * 4 + large * 4 + empty) * 2
    a = make_records([(k % 2, p[0]) for k, p in enumerate(pairs)], (0, 1), "fm")
    b = make_records([(k % 2, p[1]) for k, p in enumerate(pairs)], (0, 1), "hm")
    edges = size_bins.tercile_edges(a.query_fg_fraction[a.union[:, 1] > 0])
    # The empty label (last of each half) falls in bin 0 but is left out of the comparison.
    assert size_bins.size_bins(a.query_fg_fraction, edges).tolist()[:13] == [0] * 4 + [1] * 4 + [2] * 4 + [0]
    bins = size_bins.paired_bin_difference(a, b, edges, n_resamples=300)
    assert [x.episodes for x in bins] == [8, 8, 8]
    assert [x.difference.point for x in bins] == pytest.approx([100 * (12 / 22 - 0.4), 0.0, -100 * 25 / 350])
    assert bins[0].iou_a == pytest.approx(40.0) and bins[0].difference.half_width == pytest.approx(0, abs=1e-9)
    assert bins[0].low_edge == -np.inf and bins[2].high_edge == np.inf
