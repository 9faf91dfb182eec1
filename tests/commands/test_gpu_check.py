"""`python -m hmfs gpu-check` on the CPU (small settings): one JSON with bench reports per backbone x masking x
precision, the loader's episodes/s by workers, and `plan --bench` reading it in the config's precision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hmfs.cli import main

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_gpu_check_writes_what_plan_reads(tmp_path, capsys):
    out = tmp_path / "check.json"
    assert main(["--threads", "1", "gpu-check", "--device", "cpu", "--backbones", "resnet18", "--maskings", "fm", "hm",
                 "--precisions", "fp32", "bf16", "--img-size", "64", "--shot", "2", "--train-batch-size", "2",
                 "--repeats", "1", "--loader-workers", "0", "1", "--loader-batches", "2", "--ddp-ranks", "0",
                 "--work", str(tmp_path / "work"), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["format"] == "hmfs-gpu-check-v1" and result["device"] == "cpu"
    assert [(r["backbone"], r["masking"], r["precision"]) for r in result["reports"]] == [
        ("resnet18", "fm", "fp32"), ("resnet18", "fm", "bf16"), ("resnet18", "hm", "fp32"), ("resnet18", "hm", "bf16")]
    assert all(r["results"]["train_step"]["total"] > 0 and r["peak_memory_mib"] is None for r in result["reports"])
    rates = result["loader"]["episodes_per_second"]
    assert set(rates) == {"0", "1"} and all(rate > 0 for rate in rates.values())
    assert result["loader"]["per_worker"]["1"] == rates["1"] and result["ddp"] == {"skipped": "--ddp-ranks 0"}
    assert "the plan on them: python -m hmfs plan --bench" in capsys.readouterr().out

    assert main(["plan", "--config", str(REPO / "config.yaml"), "--bench", str(out)]) == 0
    assert "median of 2 fp32 reports" in capsys.readouterr().out
    fp16 = tmp_path / "fp16.yaml"
    config = (REPO / "config.yaml").read_text().replace("  precision: fp32            # fp32 | bf16 | fp16 (autocast;",
                                                        "  precision: fp16            # (autocast;")
    fp16.write_text(config)
    assert main(["plan", "--config", str(fp16), "--bench", str(out)]) == 2  # no fp16 report: one clear error
