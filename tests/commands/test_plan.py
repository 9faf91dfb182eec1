"""`python -m hmfs plan`: the table, the JSON, a bench file, and one-line errors for bad flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hmfs.cli import main

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "config.yaml")


def test_plan_prints_estimates_and_writes_json(tmp_path, capsys):
    assert main(["plan", "--config", CONFIG, "--gpus", "8", "--json", str(tmp_path / "plan.json")]) == 0
    out = capsys.readouterr().out
    assert "ESTIMATES" in out and "assumed: a100" in out and "on 8 GPUs" in out and "trainings 52, evaluations 136" in out
    result = json.loads((tmp_path / "plan.json").read_text())
    assert len(result["jobs"]) == 188 and result["gpus"] == 8


def test_a_bench_file_is_read(tmp_path, capsys):
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"backbone": "resnet50", "masking": "fm", "img_size": 400, "batch_size": 1,
                                 "device": "cuda", "results": {"eval_1shot": {"total": 20.0}, "train_step": {"total": 50.0}}}))
    assert main(["plan", "--config", CONFIG, "--bench", str(bench)]) == 0
    assert f"measured: {bench}" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_a_bad_gpus_value_is_one_line_naming_it(value, caplog, capsys):
    assert main(["plan", "--config", CONFIG, "--gpus", value]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "--gpus" in errors[0] and "\n" not in errors[0] and value.lstrip("-") in errors[0]
    assert capsys.readouterr().out == ""


def test_the_plan_bounds_the_grid_by_its_stopping_rule(tmp_path, capsys):
    assert main(["plan", "--config", CONFIG, "--json", str(tmp_path / "plan.json")]) == 0
    out = capsys.readouterr().out
    assert "every training to its epoch cap (an upper bound)" in out and "ASSUMED: best by min_epochs" in out
    cases = json.loads((tmp_path / "plan.json").read_text())["totals"]["by_stop"]
    assert cases["earliest"]["gpu_hours"] < cases["assumed"]["gpu_hours"] < cases["cap"]["gpu_hours"]
    # PASCAL stops after 350-2000 epochs (assumed 500): the assumed case is a quarter of the cap's hours.
    jobs = json.loads((tmp_path / "plan.json").read_text())["jobs"]
    pascal = next(j for j in jobs if j["kind"] == "train" and j["key"].startswith("pascal/"))
    assert pascal["stop_shares"] == {"cap": 1.0, "assumed": 0.25, "earliest": 0.175}
    # COCO's trainings hold two GPUs each (resources.train.gpu.coco).
    assert {j["gpus"] for j in jobs if j["kind"] == "train" and j["key"].startswith("coco/")} == {2}
