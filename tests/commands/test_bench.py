"""The bench command runs and reports every stage (it measures; nothing here asserts a speed)."""

from __future__ import annotations

import json

from hmfs.cli import main as hmfs_main


def test_bench_reports_stages(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert hmfs_main(["bench", "--backbone", "resnet18", "--masking", "hm", "--img-size", "64", "--shot", "3",
                      "--repeats", "1", "--warmup", "0", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    results = report["results"]
    assert set(results) == {"eval_1shot", "eval_3shot_as_3x1shot", "eval_3shot_query_reuse_default",
                            "eval_3shot_query_reuse_1_per_pass", "eval_3shot_query_reuse_3_per_pass", "train_step"}
    for stage in ("backbone", "correlation", "learner", "total"):
        assert results["eval_1shot"][stage] > 0 and results["train_step"][stage] > 0
    assert report["device"] == "cpu" and report["img_size"] == 64
    table = capsys.readouterr().out
    assert "eval_1shot" in table and "train_step" in table
