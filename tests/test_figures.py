"""Figures from result files: the convergence curves and the runtime bars plot the numbers in the files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from hmfs.cli import main
from hmfs.grid import Run


def write_history(results: Path, run: Run, curve: list[float]) -> None:
    path = results / run.key / "history.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"epoch": i, "val_miou": v}) + "\n" for i, v in enumerate(curve)))


def test_convergence_plots_the_mean_over_folds(tmp_path):
    results = tmp_path / "results"
    for k in range(2):
        write_history(results, Run("coco", "resnet18", "fm", f"fold{k}"), [0.0, 10.0 + k, 20.0 + k])
        write_history(results, Run("coco", "resnet18", "hm", f"fold{k}"), [5.0, 30.0 + k, 25.0])
    out = tmp_path / "fig7.png"
    assert main(["figures", "convergence", "--results", str(results), "--benchmark", "coco", "--backbones", "resnet18",
                 "--folds", "0", "1", "--variants", "HSNet=fm", "HMFS=hm", "--out", str(out)]) == 0
    numbers = json.loads(out.with_suffix(".json").read_text())
    assert numbers["resnet18/fm"] == {"folds": 2, "epochs": 3, "best_epoch": 3, "best_mean_val_miou": 20.5}
    assert numbers["resnet18/hm"]["best_epoch"] == 2 and numbers["resnet18/hm"]["best_mean_val_miou"] == 30.5
    assert Image.open(out).size[0] > 200


def test_runtime_reports_the_hm_overhead(tmp_path):
    results = tmp_path / "results"
    for variant, ms in (("fm", [10.0, 12.0, 11.0]), ("hm", [15.0, 13.0, 14.0])):
        for k, value in enumerate(ms):
            path = results / Run("coco", "resnet18", variant, f"fold{k}").key / "eval_1shot.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"timings": {"ms_per_episode": value}}))
    out = tmp_path / "runtime.png"
    assert main(["figures", "runtime", "--results", str(results), "--benchmark", "coco", "--backbones", "resnet18",
                 "--folds", "0", "1", "2", "3", "--shots", "1", "--variants", "FM=fm", "HM=hm",
                 "--claimed-overhead", "0.4", "--out", str(out)]) == 0
    numbers = json.loads(out.with_suffix(".json").read_text())
    assert numbers == {"resnet18/fm/1shot": 11.0, "resnet18/hm/1shot": 14.0}  # medians over the folds found
    assert out.is_file()


def test_qualitative_needs_the_prediction_files(tmp_path, caplog):
    assert main(["figures", "qualitative", "--results", str(tmp_path), "--benchmark", "coco", "--backbone", "resnet18",
                 "--variants", "FM=fm", "--data-root", str(tmp_path), "--img-size", "64", "--out",
                 str(tmp_path / "q.png")]) == 2
    assert "predictions not found" in caplog.text


@pytest.mark.parametrize("figure", ["convergence", "runtime", "qualitative"])
def test_figure_help(figure, capsys):
    with pytest.raises(SystemExit):
        main(["figures", figure, "--help"])
    assert "--out" in capsys.readouterr().out
