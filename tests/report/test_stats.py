"""Per-episode records of the evaluation and the bootstrap statistics built on them (hmfs.report.stats)."""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from hmfs.report import stats
from hmfs.engine import evaluate_episodes
from hmfs.metrics import IoUAccumulator

SIDE = 20  # pixels per side of the made-up episodes: valid pixels 400


def episode_counts(fg: int, inter_fg: int, pred_fg: int, valid: int = SIDE * SIDE) -> tuple[list[int], list[int]]:
    """[bg, fg] intersection and union of one episode from its label, prediction and overlap sizes."""
    union_fg = fg + pred_fg - inter_fg
    return [valid - union_fg, inter_fg], [valid - inter_fg, union_fg]


def make_records(kinds: list[tuple[int, tuple[int, int, int]]], class_ids: tuple[int, ...], label: str = "",
                 episode: np.ndarray | None = None) -> stats.EpisodeRecords:
    """Records from (class id, (fg, inter_fg, pred_fg)) per episode."""
    counts = [episode_counts(*sizes) for _, sizes in kinds]
    return stats.EpisodeRecords(
        episode=np.arange(len(kinds)) if episode is None else episode,
        class_id=np.array([c for c, _ in kinds], dtype=np.int64),
        intersection=np.array([i for i, _ in counts], dtype=np.int64),
        union=np.array([u for _, u in counts], dtype=np.int64),
        query_fg_fraction=np.array([sizes[0] / SIDE**2 for _, sizes in kinds]),
        class_ids=class_ids, label=label,
    )


def summary_json(records: stats.EpisodeRecords) -> dict:
    """An evaluation JSON's fields as the accumulator writes them, for `records`."""
    accumulator = IoUAccumulator(records.class_ids, max(records.class_ids) + 1, keep_episodes=True)
    fg_pixels = np.round(records.query_fg_fraction * SIDE**2).astype(np.int64)
    accumulator.update(torch.from_numpy(records.intersection), torch.from_numpy(records.union),
                       torch.from_numpy(records.class_id), episode=torch.from_numpy(records.episode),
                       query_fg_pixels=torch.from_numpy(fg_pixels),
                       query_valid_pixels=torch.full((len(records.episode),), SIDE**2))
    return accumulator.summary()


def test_identical_episodes_within_each_class_give_a_zero_width_interval():
    records = make_records([(0, (100, 60, 80))] * 7 + [(1, (50, 10, 30))] * 4 + [(2, (200, 190, 195))] * 9, (0, 1, 2))
    result = stats.bootstrap(records, n_resamples=500)
    for estimate in (result.miou, result.fb_iou):
        assert estimate.low == estimate.high == estimate.point and estimate.half_width == 0


def test_bootstrap_matches_the_exact_distribution_of_a_two_class_stream():
    # Class 0: 2 episodes of kind A and 2 of kind B; class 1: 1 of kind C and 5 of kind D.
    kinds = {"A": (100, 90, 95), "B": (100, 20, 60), "C": (40, 0, 30), "D": (40, 30, 35)}
    layout = [(0, "A"), (0, "A"), (0, "B"), (0, "B"), (1, "C")] + [(1, "D")] * 5
    records = make_records([(c, kinds[k]) for c, k in layout], (0, 1))
    inter = {k: episode_counts(*v)[0] for k, v in kinds.items()}
    union = {k: episode_counts(*v)[1] for k, v in kinds.items()}

    def scores(k0: int, k1: int) -> tuple[float, float]:
        """mIoU and FB-IoU when class 0 drew k0 A's (of 4) and class 1 drew k1 C's (of 6)."""
        sums = [[[k * inter[a][j] + (n - k) * inter[b][j], k * union[a][j] + (n - k) * union[b][j]]
                 for j in (0, 1)] for k, n, a, b in ((k0, 4, "A", "B"), (k1, 6, "C", "D"))]
        miou = 50 * sum(s[1][0] / s[1][1] for s in sums)
        fb = 50 * sum(sum(s[j][0] for s in sums) / sum(s[j][1] for s in sums) for j in (0, 1))
        return miou, fb

    atoms = []  # (probability, mIoU, FB-IoU) of every (k0, k1)
    for k0, k1 in itertools.product(range(5), range(7)):
        p = math.comb(4, k0) * 0.5**4 * math.comb(6, k1) * (1 / 6) ** k1 * (5 / 6) ** (6 - k1)
        atoms.append((p, *scores(k0, k1)))
    p = np.array([a[0] for a in atoms])
    resamples_n = 20_000
    result = stats.bootstrap(records, n_resamples=resamples_n, seed=3)
    assert result.miou.point == pytest.approx(scores(2, 1)[0], abs=1e-9)
    for column, estimate in ((1, result.miou), (2, result.fb_iou)):
        values = np.array([a[column] for a in atoms])
        mean = float(p @ values)
        sd = math.sqrt(float(p @ (values - mean) ** 2))
        assert estimate.resamples.mean() == pytest.approx(mean, abs=5 * sd / math.sqrt(resamples_n))
        assert estimate.resamples.std() == pytest.approx(sd, rel=0.05)
        for level in np.unique(values):  # the empirical CDF at every atom, within 5 Monte-Carlo SEs
            cdf = float(p[values <= level + 1e-12].sum())
            tolerance = 5 * math.sqrt(max(cdf * (1 - cdf), 1e-4) / resamples_n)
            assert float((estimate.resamples <= level + 1e-12).mean()) == pytest.approx(cdf, abs=tolerance)
        order = np.argsort(values)  # the exact 2.5% / 97.5% quantiles are atoms the interval must land on
        cdf = np.cumsum(p[order])
        low, high = values[order][np.searchsorted(cdf, 0.025)], values[order][np.searchsorted(cdf, 0.975)]
        assert estimate.low == pytest.approx(low, abs=1e-9) and estimate.high == pytest.approx(high, abs=1e-9)


def test_counts_give_the_accumulators_scores():
    rng = np.random.default_rng(0)
    n = 300
    class_id = rng.integers(0, 8, n)  # class 7 is not of interest; class 6 never drawn below
    class_id[class_id == 6] = 5
    inter = rng.integers(0, 5000, (n, 2))
    union = inter + rng.integers(0, 5000, (n, 2))
    union[:3, 1] = inter[:3, 1] = 0
    class_ids = (0, 1, 2, 3, 4, 5, 6)
    accumulator = IoUAccumulator(class_ids, 8, keep_episodes=True)
    for chunk in np.array_split(np.arange(n), 7):
        accumulator.update(*(torch.from_numpy(x[chunk]) for x in (inter, union, class_id)))
    counts = (inter, union, class_id, class_ids)
    assert stats.miou_from_counts(*counts) == pytest.approx(accumulator.miou(), abs=1e-9)
    assert stats.fb_iou_from_counts(*counts) == pytest.approx(accumulator.fb_iou(), abs=1e-9)
    records = stats.records_from_summary(json.loads(json.dumps(accumulator.summary())), "run")
    assert records.episode.tolist() == list(range(n))  # the running count when no ids are given
    result = stats.bootstrap(records, n_resamples=200)
    assert result.miou.point == pytest.approx(accumulator.miou(), abs=1e-9)
    assert result.fb_iou.point == pytest.approx(accumulator.fb_iou(), abs=1e-9)
    assert np.isnan(records.query_fg_fraction).all()


class ThresholdModel:
    """Predicts foreground where the query image's first channel is positive."""

    def eval(self) -> ThresholdModel:
        return self

    def predict_mask_nshot(self, query_img, support_imgs, support_masks, out_size=None):
        return (query_img[:, 0] > 0).long()  # (B, H, W)


def test_evaluate_episodes_keeps_each_episodes_counts_and_foreground_fraction():
    h = w = 4
    label = torch.zeros(4, h, w)
    label[0, :2] = 1  # 8 fg
    label[1, :1] = 1  # 4 fg
    label[2, :, :1] = 1  # 4 fg
    label[3, 0, 0] = 1  # 1 fg
    ignore = torch.zeros(4, h, w)
    ignore[1, 3] = 1  # 4 ignored pixels in episode 11
    image = torch.full((4, 3, h, w), -1.0)
    image[0, 0, :1] = 1  # predicts 4 of the 8
    image[1, 0, :2] = 1  # predicts 8: 4 right, 4 wrong
    image[3, 0, 3] = 1  # predicts 4 all wrong
    batches = [{
        "query_img": image[i:i + 2], "query_mask": label[i:i + 2], "query_ignore_idx": ignore[i:i + 2],
        "support_imgs": torch.zeros(2, 1, 3, h, w), "support_masks": torch.zeros(2, 1, h, w),
        "class_id": torch.tensor([3, 1]), "episode": torch.tensor([10 + i, 11 + i]),
        "query_name": ["q", "q"], "support_names": [["s", "s"]],
    } for i in (0, 2)]
    accumulator = IoUAccumulator([1, 3], 5, keep_episodes=True)
    evaluate_episodes(ThresholdModel(), batches, accumulator, 1, torch.device("cpu"), log_every=0)
    per = accumulator.summary()["per_episode"]
    assert per == {
        "episode": [10, 11, 12, 13],
        "class_id": [3, 1, 3, 1],
        "intersection": [[8, 4], [4, 4], [12, 0], [11, 0]],
        "union": [[12, 8], [8, 8], [16, 4], [16, 5]],
        "query_fg_fraction": [0.5, round(4 / 12, 6), 0.25, 0.0625],
    }
    records = stats.records_from_summary(accumulator.summary())
    assert stats.miou_from_counts(records.intersection, records.union, records.class_id, (1, 3)) == pytest.approx(
        accumulator.miou(), abs=1e-9)


def test_episode_records_are_opt_in_and_survive_a_state_round_trip():
    inter, union = torch.tensor([[5, 3], [7, 1]]), torch.tensor([[9, 4], [8, 2]])
    plain = IoUAccumulator([0, 1], 2)
    plain.update(inter, union, torch.tensor([0, 1]), episode=torch.tensor([4, 5]))
    assert "per_episode" not in plain.summary() and not any(k.startswith("episode_") for k in plain.state_dict())
    kept = IoUAccumulator([0, 1], 2, keep_episodes=True)
    kept.update(inter, union, torch.tensor([0, 1]), episode=torch.tensor([4, 5]),
                query_fg_pixels=torch.tensor([3, 0]), query_valid_pixels=torch.tensor([12, 0]))
    resumed = IoUAccumulator([0, 1], 2, keep_episodes=True)
    resumed.load_state_dict(kept.state_dict())
    resumed.update(inter[:1], union[:1], torch.tensor([1]), episode=torch.tensor([6]))
    per = resumed.summary()["per_episode"]
    assert per["episode"] == [4, 5, 6] and per["class_id"] == [0, 1, 1]
    assert per["query_fg_fraction"] == [0.25, None, None]
    with pytest.raises(ValueError, match="saved without keep_episodes"):
        IoUAccumulator([0, 1], 2, keep_episodes=True).load_state_dict(plain.state_dict())


def write_evaluation(path: Path, records: stats.EpisodeRecords) -> Path:
    path.write_text(json.dumps(summary_json(records)))
    return path


def test_paired_difference_is_zero_for_identical_evaluations_and_refuses_other_episodes(tmp_path):
    rng = np.random.default_rng(1)
    kinds = [(int(c), (int(f), int(f * q), int(f * q) + 5)) for c, f, q in
             zip(rng.integers(0, 3, 60), rng.integers(20, 300, 60), rng.random(60))]
    fm = stats.load_episodes(write_evaluation(tmp_path / "fm.json", make_records(kinds, (0, 1, 2))))
    hm = stats.load_episodes(write_evaluation(tmp_path / "hm.json", make_records(kinds, (0, 1, 2))))
    same = stats.paired_difference(fm, hm, n_resamples=300)
    for estimate in (same.miou, same.fb_iou):
        assert estimate.point == estimate.low == estimate.high == estimate.half_width == 0
    shifted = make_records(kinds, (0, 1, 2), episode=np.arange(60) + 1)
    other = stats.load_episodes(write_evaluation(tmp_path / "other.json", shifted))
    with pytest.raises(ValueError, match=r"fm\.json and .*other\.json are not paired: episode differs"):
        stats.paired_difference(fm, other)
    short = stats.load_episodes(write_evaluation(tmp_path / "short.json", make_records(kinds[:-1], (0, 1, 2))))
    with pytest.raises(ValueError, match=r"fm\.json and .*short\.json are not paired: 60 vs 59"):
        stats.paired_difference(fm, short)


def test_paired_difference_of_a_uniform_gain_is_that_gain():
    base = [(c, (100, 50 + 5 * i, 70 + 5 * i)) for i in range(6) for c in (0, 1)]
    better = [(c, (fg, inter + 20, pred + 20)) for c, (fg, inter, pred) in base]  # +20 overlap, same union
    a, b = make_records(base, (0, 1), "fm"), make_records(better, (0, 1), "hm")
    diff = stats.paired_difference(a, b, n_resamples=400)
    assert diff.label == "hm - fm"
    assert diff.miou.point == pytest.approx(stats.bootstrap(b).miou.point - stats.bootstrap(a).miou.point, abs=1e-9)
    assert diff.miou.low > 0 and diff.miou.low <= diff.miou.point <= diff.miou.high


def test_combine_seeds_reduces_to_the_bootstrap_and_averages_seeds():
    records = make_records([(c, (100, 10 * k, 60 + 5 * k)) for k in range(1, 9) for c in (0, 1)], (0, 1))
    single = stats.bootstrap(records, n_resamples=1000, seed=5)
    combined = stats.combine_seeds([single])
    assert combined.seeds == 1 and math.isnan(combined.miou_spread)
    for name in ("miou", "fb_iou"):
        plain, one = getattr(single, name), getattr(combined, name)
        assert one.as_dict() == plain.as_dict()
        assert np.array_equal(one.resamples, plain.resamples)

    # A seed whose every resample is 4 mIoU above a constant one: the drawn pair holds 0, 1 or 2
    # copies of it (probabilities 1/4, 1/2, 1/4), so the combined resamples are 50, 52 or 54.
    def constant(value: float) -> stats.Bootstrap:
        flat = stats.Estimate(value, value, value, 0.0, np.full(4000, value))
        return stats.Bootstrap(flat, flat, 0, 0.95, f"seed {value}", records.episode, records.class_id)

    two = stats.combine_seeds([constant(50.0), constant(54.0)])
    assert two.miou.point == 52.0 and two.miou_spread == pytest.approx(4 / math.sqrt(2))
    shares = [float((two.miou.resamples == v).mean()) for v in (50.0, 52.0, 54.0)]
    assert shares == pytest.approx([0.25, 0.5, 0.25], abs=0.03)
    assert (two.miou.low, two.miou.high) == (50.0, 54.0)
    with pytest.raises(ValueError, match="same episodes with the same seed"):
        stats.combine_seeds([single, stats.bootstrap(records, n_resamples=1000, seed=6)])


def test_evaluation_without_episode_records_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "eval_1shot.json"
    path.write_text(json.dumps({"miou": 40.0, "fb_iou": 60.0, "class_iou": {"0": 40.0}}))
    name = re.escape(str(path))
    with pytest.raises(ValueError, match=rf"{name} has no per-episode.*re-run its evaluation: snakemake --forcerun {name}$"):
        stats.load_episodes(path)
