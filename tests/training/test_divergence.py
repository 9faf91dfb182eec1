"""A diverging training stops at its first non-finite step, exits non-zero, saves nothing non-finite and writes
strict JSON; `evaluate` refuses a checkpoint with NaN weights, or one trained on another frozen backbone."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

from hmfs.commands.evaluate import evaluate
from hmfs.training.attempts import TrainingDiverged, read_attempts
from hmfs.training.components import json_line
from hmfs.training.run import train
from tests.commands.test_train_evaluate import pascal  # noqa: F401  (a fixture)
from tests.training.test_train_signals import cli_args, config_for

pytestmark = pytest.mark.slow


def strict(text: str) -> list[dict]:
    """JSON lines, refusing NaN / Infinity (which `json` reads by default but no strict parser does)."""
    def refuse(token):
        raise ValueError(f"non-JSON token {token}")
    return [json.loads(line, parse_constant=refuse) for line in text.splitlines()]


def test_history_lines_are_strict_json():
    assert json_line({"epoch": 0, "val_loss": math.nan, "train_loss": math.inf, "val_miou": 1.5}) == \
        '{"epoch": 0, "val_loss": null, "train_loss": null, "val_miou": 1.5}\n'


def test_a_diverging_run_stops_at_its_first_non_finite_step(pascal, tmp_path):
    data, splits = pascal
    # lr 1e30: the first Adam step makes the weights ~1e30, and the next forward overflows (GroupNorm squares them).
    config = config_for(data, splits, tmp_path / "run", lr=1e30, checkpoint_every=1)
    with pytest.raises(TrainingDiverged, match=r"training diverged at epoch 0, step \d+: .*\(lr 1e\+30, precision fp32\)"):
        train(config)
    state_dir = config.state_path.parent
    (record,) = read_attempts(state_dir / "attempts.jsonl")
    assert record["outcome"] == "failed" and "TrainingDiverged" in record["error"]
    state = torch.load(config.state_path, weights_only=True)  # the steps before the divergence, all finite
    assert state["step"] >= 1 and all(bool(torch.isfinite(v).all()) for v in state["learner"].values())
    assert not (Path(config.out_dir) / "best.pt").exists()
    strict((state_dir / "history.jsonl").read_text())

    # The command: exit 1 and one line naming the step and the fix.
    result = subprocess.run([sys.executable, "-m", "hmfs", *cli_args(config), "--lr", "1e30", "--state-dir",
                             str(tmp_path / "cli.state")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "training diverged at epoch 0" in errors[0] and "lower the learning rate" in errors[0]


def test_evaluate_refuses_nan_weights(pascal, tmp_path):
    data, splits = pascal
    config = config_for(data, splits, tmp_path / "run", epochs=1)
    train(config)
    out = Path(config.out_dir)
    strict((out / "history.jsonl").read_text())
    checkpoint = torch.load(out / "best.pt", weights_only=True)
    key = next(iter(checkpoint["learner"]))
    checkpoint["learner"][key][0] = float("nan")
    torch.save(checkpoint, tmp_path / "nan.pt")
    with pytest.raises(ValueError, match=rf"nan.pt holds NaN or infinite weights \({key}"):
        evaluate(benchmark="pascal", data_root=data, splits_dir=splits, fold=1, backbone="resnet18", masking="hm",
                 checkpoint=tmp_path / "nan.pt", random_backbone=True, img_size=64, episodes=4)
    # The checkpoint records its frozen backbone (here random): other backbone weights are refused.
    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    with pytest.raises(ValueError, match=r"was trained on a random backbone, but this evaluation has backbone weights "
                                         r"with sha256 [0-9a-f]{12}… \(.*resnet18.pth\): pass the weights it was trained with"):
        evaluate(benchmark="pascal", data_root=data, splits_dir=splits, fold=1, backbone="resnet18", masking="hm",
                 checkpoint=out / "best.pt", backbone_weights=weights, img_size=64, episodes=4)
    assert torch.load(out / "best.pt", weights_only=True)["backbone_weights_sha256"] is None
