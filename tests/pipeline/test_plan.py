"""The cost plan (hmfs.pipeline.plan): the paper's grid, episode counts, the greedy schedule's bounds, and bench-file throughput."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from hmfs.data.episodes import DEFAULT_EVAL_EPISODES
from hmfs.pipeline import episode_counts
from hmfs.pipeline.episode_counts import EpisodeCounter
from hmfs.pipeline.grid import training_runs
from hmfs.pipeline.plan import (
    DEFAULT_DEVICE_CLASS, Job, bench_throughput, device_class_throughput, greedy_schedule, longest_chain, plan,
    short_summary,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def paper():
    return yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.fixture(scope="module")
def paper_plan(paper):
    """The paper grid's plan with one GPU per job (the scheduling bounds below hold for such jobs)."""
    config = copy.deepcopy(paper)
    config["resources"]["train"]["gpu"] = 1
    return plan(config, device_class_throughput(DEFAULT_DEVICE_CLASS), 64)


def test_several_gpus_per_training_shorten_its_hours_not_its_gpu_hours(paper):
    one = copy.deepcopy(paper)
    one["resources"]["train"]["gpu"] = 1
    jobs = {cfg: {j["key"]: j for j in plan(c, device_class_throughput(DEFAULT_DEVICE_CLASS), 64)["jobs"]}
            for cfg, c in (("one", one), ("paper", paper))}
    key = "coco/resnet101/hm/fold0/seed0"
    assert paper["resources"]["train"]["gpu"]["coco"] == 2 and jobs["paper"][key]["gpus"] == 2
    assert jobs["paper"][key]["hours"] == pytest.approx(jobs["one"][key]["hours"] / 2)  # linear scaling, assumed
    assert jobs["paper"][key]["gpu_hours"] == pytest.approx(jobs["one"][key]["gpu_hours"])


def bench_report(eval_ms: float, train_ms: float) -> dict:
    """What `python -m hmfs bench --out` writes, reduced to the keys the plan reads."""
    return {"backbone": "resnet50", "masking": "hm", "img_size": 400, "batch_size": 1, "train_batch_size": 1,
            "shot": 5, "device": "cuda", "results": {"eval_1shot": {"total": eval_ms}, "train_step": {"total": train_ms}}}


def test_the_paper_grid_has_52_trainings_and_136_evaluations_with_positive_totals(paper_plan):
    totals = paper_plan["totals"]
    assert (totals["trainings"], totals["evaluations"], totals["unknown_length"]) == (52, 136, 0)
    assert totals["gpu_hours_train"] > 0 and totals["gpu_hours_evaluate"] > 0 and totals["flops"] > 0
    assert totals["makespan_hours"] > 0 and totals["longest_chain_run"].startswith("coco/resnet101/hm/")
    assert paper_plan["estimate"] and "assumed" in paper_plan["throughput"]["source"]


def test_episode_counts_come_from_the_shipped_lists(paper):
    assert episode_counts.DEFAULT_EVAL_EPISODES == DEFAULT_EVAL_EPISODES
    counter = EpisodeCounter(paper)
    per_epoch = {run.key: counter.train_per_epoch(run).episodes for run in training_runs(paper)}
    pascal = [n for key, n in per_epoch.items() if key.startswith("pascal/")]
    coco = [n for key, n in per_epoch.items() if key.startswith("coco/")]
    assert 7_000 < min(pascal) and max(pascal) < 12_000
    assert 60_000 < min(coco) and max(coco) < 80_000  # distinct images of the 60 training classes (HSNet's epoch)
    assert {n for key, n in per_epoch.items() if key.startswith("fss/")} == {5_200}


def test_a_train_episodes_cap_applies_and_missing_prepared_lists_are_named(paper, tmp_path):
    config = copy.deepcopy(paper)
    config["data"] = {**config["data"], "splits": "prepared", "root": "nowhere"}
    config["train"]["coco"]["train_episodes"] = 100
    counter = EpisodeCounter(config, tmp_path)
    run = next(r for r in training_runs(config) if r.benchmark == "coco")
    assert counter.train_per_epoch(run).episodes == 100 and "not written yet" in counter.train_per_epoch(run).note
    fss = next(r for r in training_runs(config) if r.benchmark == "fss")
    assert counter.train_per_epoch(fss).episodes is None


def job(key: str, hours: float, depends_on: str | None = None) -> Job:
    return Job(key, "evaluate" if depends_on else "train", "g", 1, 1, 0, 1.0, 1, hours, depends_on)


@pytest.mark.parametrize("gpus", [1, 3, 64])
def test_the_greedy_makespan_is_within_its_bounds(paper_plan, gpus):
    jobs = [Job(**{k: v for k, v in j.items() if k != "gpu_hours"}) for j in paper_plan["jobs"]]
    makespan, total, chain = greedy_schedule(jobs, gpus), sum(j.hours for j in jobs), longest_chain(jobs)[0]
    assert max(chain, total / gpus) - 1e-9 <= makespan <= total / gpus + chain + 1e-9


def test_an_evaluation_waits_for_its_training():
    jobs = [job("a", 10.0), job("b", 1.0), job("a/e", 5.0, "a"), job("b/e", 1.0, "b")]
    assert greedy_schedule(jobs, 2) == 15.0 and longest_chain(jobs) == (15.0, "a")
    assert greedy_schedule(jobs, 1) == 17.0


def test_a_bench_file_changes_the_throughput(paper):
    assumed = device_class_throughput(DEFAULT_DEVICE_CLASS)
    fast, slow = bench_throughput(bench_report(10.0, 20.0)), bench_throughput(bench_report(100.0, 200.0))
    assert fast.evaluate == pytest.approx(145.5e9 / 0.01, rel=0.01) and fast.train == pytest.approx(10 * slow.train)
    assert fast.source.startswith("measured") and fast.evaluate != assumed.evaluate
    hours = [plan(paper, rate, 64)["totals"]["gpu_hours"] for rate in (assumed, fast, slow)]
    assert hours[2] == pytest.approx(10 * hours[1]) and hours[0] != hours[1]


def test_bad_inputs_name_themselves(paper):
    with pytest.raises(ValueError, match="--gpus"):
        plan(paper, device_class_throughput("h100"), 0)
    with pytest.raises(ValueError, match="'b200'"):
        device_class_throughput("b200")
    with pytest.raises(ValueError, match="not a `python -m hmfs bench"):
        bench_throughput({"backbone": "resnet50"})


def test_the_short_summary_a_gpu_run_prints_at_its_start(paper):
    lines = short_summary(plan(paper, device_class_throughput(DEFAULT_DEVICE_CLASS), 64)).splitlines()
    assert len(lines) == 3 and "ESTIMATES" in lines[0] and "52 trainings, 136 evaluations" in lines[0]
    assert "GPU-hours 770 - 8,591 (assumed 1,047)" in lines[1] and "on 64 GPUs 15.6 h - 8.69 days" in lines[1]
