"""Interval cells of the tables (hmfs.report.uncertainty): per fold, over folds, over training seeds, paired; and in the tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hmfs.report import stats, uncertainty
from hmfs.cli import main
from hmfs.pipeline.grid import Evaluation, Run

VALID = 1000  # pixels per made-up query


def evaluation(fg_iou: np.ndarray, class_id: np.ndarray, class_ids: tuple[int, ...], fraction: np.ndarray | None = None,
               episode: np.ndarray | None = None, ms: float = 10.0) -> dict:
    """An evaluation JSON's fields from per-episode foreground IoUs (N,) (label = prediction size)."""
    n = len(fg_iou)
    fraction = np.full(n, 0.2) if fraction is None else fraction
    fg = np.maximum(1, np.round(fraction * VALID)).astype(np.int64)
    # prediction of the label's size overlapping by inter: IoU = inter / (2 fg - inter)
    inter = np.round(2 * fg * fg_iou / (1 + fg_iou)).astype(np.int64)
    union_fg = 2 * fg - inter
    intersection = np.stack([VALID - union_fg, inter], axis=1)
    union = np.stack([VALID - inter, union_fg], axis=1)
    records = stats.EpisodeRecords(np.arange(n) if episode is None else episode, class_id, intersection, union,
                                   fg / VALID, class_ids)
    return {"miou": stats.miou_from_counts(intersection, union, class_id, class_ids),
            "fb_iou": stats.fb_iou_from_counts(intersection, union, class_id, class_ids),
            "class_iou": {str(c): 0.0 for c in class_ids}, "episodes": n, "timings": {"ms_per_episode": ms},
            "checkpoint_origin": "trained",
            "per_episode": {"episode": records.episode.tolist(), "class_id": class_id.tolist(),
                            "intersection": intersection.tolist(), "union": union.tolist(),
                            "query_fg_fraction": (fg / VALID).round(6).tolist()}}


def write(results: Path, run: Run, shot: int, fields: dict, test: str | None = None) -> Path:
    path = results / run.key / f"{Evaluation(run, shot, test or run.benchmark).name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fields))
    return path


def stream(seed: int, n: int = 60, classes: int = 3, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.clip(rng.beta(2, 2, n) + shift, 0, 1), np.arange(n) % classes


SETTINGS = uncertainty.Settings(resamples=400, seed=0)


def test_difference_is_paired_difference_and_refuses_unpaired_episodes(tmp_path):
    iou, cls = stream(0)
    fm = write(tmp_path, Run("coco", "r", "fm", "fold1"), 1, evaluation(iou, cls, (0, 1, 2)))
    hm = write(tmp_path, Run("coco", "r", "hm", "fold1"), 1, evaluation(np.clip(iou + 0.05, 0, 1), cls, (0, 1, 2)))
    scorer = uncertainty.Scorer(SETTINGS)
    mine = uncertainty.difference(scorer.bootstrap(fm, 1), scorer.bootstrap(hm, 1))
    theirs = stats.paired_difference(scorer.records(fm), scorer.records(hm), SETTINGS.resamples, seed=1)
    for metric in ("miou", "fb_iou"):
        assert np.allclose(getattr(mine, metric).resamples, getattr(theirs, metric).resamples, rtol=0, atol=1e-9)
        assert getattr(mine, metric).low == pytest.approx(getattr(theirs, metric).low)
    other = write(tmp_path, Run("coco", "r", "im", "fold1"), 1, evaluation(iou, cls, (0, 1, 2), episode=np.arange(60) + 1))
    with pytest.raises(ValueError, match="not paired: episode differs"):
        uncertainty.difference(scorer.bootstrap(fm, 1), scorer.bootstrap(other, 1))


def test_fold_k_resamples_with_seed_plus_k_and_the_mean_averages_each_folds_resamples(tmp_path):
    scorer = uncertainty.Scorer(SETTINGS)
    boots = []
    for k in (0, 1):
        iou, cls = stream(k)
        path = write(tmp_path, Run("coco", "r", "fm", f"fold{k}"), 1, evaluation(iou, cls, (0, 1, 2)))
        boots.append(scorer.bootstrap(path, k))
        assert np.array_equal(boots[-1].miou.resamples,
                              stats.bootstrap(scorer.records(path), SETTINGS.resamples, seed=k).miou.resamples)
    cells = uncertainty.row_cells([[b] for b in boots], True, True, 0.95)
    assert [c.point for c in cells[:2]] == [b.miou.point for b in boots]
    assert (cells[0].low, cells[0].high) == (boots[0].miou.low, boots[0].miou.high)
    mean = np.mean([b.miou.resamples for b in boots], axis=0)
    assert cells[2].point == pytest.approx(np.mean([b.miou.point for b in boots]))
    assert (cells[2].low, cells[2].high) == tuple(np.quantile(mean, [0.025, 0.975]))
    assert cells[3].point == pytest.approx(np.mean([b.fb_iou.point for b in boots]))
    assert cells[2].half_width < min(c.half_width for c in cells[:2])  # two folds' episodes: a narrower mean
    assert uncertainty.row_cells([[boots[0]], None], True, True, 0.95)[1:] == [None, None, None]  # missing fold


def test_seeds_combine_as_documented(tmp_path):
    scorer = uncertainty.Scorer(SETTINGS)
    paths = []
    for seed, shift in ((0, 0.0), (1, 0.1), (2, -0.05)):
        iou, cls = stream(7, shift=shift)  # the same test episodes, three trainings
        paths.append(write(tmp_path, Run("coco", "r", "fm", "fold0", seed=seed), 1, evaluation(iou, cls, (0, 1, 2))))
    boots = [scorer.bootstrap(p, 0) for p in paths]
    combined = uncertainty.over_seeds(boots)["miou"]
    reference = stats.combine_seeds(boots)
    assert combined.point == pytest.approx(np.mean([b.miou.point for b in boots]))
    assert np.array_equal(combined.resamples, reference.miou.resamples)
    cell = combined.cell(0.95)
    assert cell.spread == pytest.approx(np.std([b.miou.point for b in boots], ddof=1)) and cell.seeds == 3
    assert cell.half_width > max(b.miou.half_width for b in boots) / 2
    single = uncertainty.over_seeds(boots[:1])["miou"].cell(0.95)  # one seed: its own bootstrap, no spread
    assert (single.point, single.low, single.high, single.spread) == (boots[0].miou.point, boots[0].miou.low,
                                                                       boots[0].miou.high, None)


def constant(value: float) -> dict:
    """Identical episodes of one class whose mIoU is exactly `value` (FB-IoU 70)."""
    from tests.report.test_tables import per_episode

    return {**per_episode(value, 70.0, episodes=6), "timings": {"ms_per_episode": 10.0}}


def table2(results: Path, out: Path, *extra: str) -> int:
    from tests.report.test_tables import evaluation_files

    return main(["tables", "--table", "table2", "--evaluations", *evaluation_files(results), "--benchmark", "coco",
                 "--backbones", "r50", "--folds", "0", "--shots", "1", "--rows", "HSNet=fm", "HMFS=hm", "--synthetic",
                 "--resamples", "400", "--out-prefix", str(out), *extra])


def test_table_cells_identical_episodes_known_values_and_two_seeds(tmp_path):
    results = tmp_path / "results"
    write(results, Run("coco", "r50", "fm", "fold0"), 1, constant(40.0))
    write(results, Run("coco", "r50", "hm", "fold0"), 1, constant(50.0))
    assert table2(results, tmp_path / "t") == 0
    md = (tmp_path / "t.md").read_text()
    assert "| r50 | HSNet (reproduced) | 40.0 ± 0.0 | 40.0 ± 0.0 |" in md  # fold0, mean mIoU
    assert "| r50 | HMFS − HSNet (paired) | +10.0 ± 0.0 | +10.0 ± 0.0 |" in md
    header, *lines = (tmp_path / "t.csv").read_text().splitlines()
    row = dict(zip(header.split(","), lines[0].split(",")))
    assert row["1shot_mIoU"] == row["1shot_mIoU_low"] == row["1shot_mIoU_high"] == "40.0000" and row["seeds"] == "1"
    assert "± is half the 95% interval" in md and "(paired)' rows" in md

    write(results, Run("coco", "r50", "fm", "fold0", seed=1), 1, constant(44.0))
    write(results, Run("coco", "r50", "hm", "fold0", seed=1), 1, constant(50.0))
    assert table2(results, tmp_path / "s", "--seeds", "0", "1") == 0
    md = (tmp_path / "s.md").read_text()
    # mean over seeds 42; seeds drawn with replacement: {40, 42, 44} with probabilities 1/4, 1/2, 1/4 -> [40, 44]
    assert "| r50 | HSNet (reproduced) | 42.0 ± 2.0 (sd 2.8) |" in md
    assert "| r50 | HMFS − HSNet (paired) | +8.0 ± 2.0 (sd 2.8) |" in md
    assert "mean over training seeds 0, 1" in md and "two-stage bootstrap" in md
    assert "Made from 4 of 4 evaluation files" in md


def test_old_evaluation_files_give_one_clear_error(tmp_path, caplog):
    results = tmp_path / "results"
    old = write(results, Run("coco", "r50", "fm", "fold0"), 1, {"miou": 40.0, "fb_iou": 60.0})
    write(results, Run("coco", "r50", "hm", "fold0"), 1, constant(50.0))
    assert table2(results, tmp_path / "t") == 2  # cli.main: one line, no traceback
    assert f"{old} has no per-episode records" in caplog.text and f"snakemake --forcerun {old}" in caplog.text


def test_a_table_refuses_to_pair_different_episodes(tmp_path, caplog):
    results = tmp_path / "results"
    write(results, Run("coco", "r50", "fm", "fold0"), 1, constant(40.0))
    shifted = constant(50.0)
    shifted["per_episode"]["episode"] = [i + 100 for i in shifted["per_episode"]["episode"]]  # another episode seed
    write(results, Run("coco", "r50", "hm", "fold0"), 1, shifted)
    assert table2(results, tmp_path / "t") == 2
    assert "are not paired: episode differs" in caplog.text


def test_cell_text():
    cell = uncertainty.Cell(38.14, 35.8, 40.4)
    assert uncertainty.fmt_cell(cell) == "38.1 ± 2.3" and uncertainty.fmt_cell(None) == "–"
    assert uncertainty.fmt_cell(uncertainty.Cell(4.7, 3.5, 5.9, 0.81, 2), signed=True) == "+4.7 ± 1.2 (sd 0.8)"
    assert cell.shifted(39.0).covers(0.0) and not cell.shifted(41.0).covers(0.0)
    with pytest.raises(ValueError, match="confidence"):
        uncertainty.Settings(confidence=1.0)
