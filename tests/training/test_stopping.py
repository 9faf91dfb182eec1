"""The stopping rule: the epoch cap, or no better validation mIoU for `patience` epochs after `min_epochs`;
a finished run records why it stopped, and a larger cap or patience resumes a finished state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hmfs.training.config import TrainConfig
from hmfs.training.run import train
from hmfs.training.stopping import assumed_stop, earliest_stop, stop_reason
from tests.commands.test_train_evaluate import pascal, read_history  # noqa: F401  (pascal is a fixture)
from tests.training.test_train_signals import config_for


def history(*best_epochs: int) -> list[dict]:
    return [{"epoch": i, "best_epoch": best} for i, best in enumerate(best_epochs)]


def test_the_rule_counts_epochs_since_the_best_one():
    assert stop_reason([], 5, 2) is None
    assert stop_reason(history(0, 1, 1), 5, 2) is None  # best 1 epoch old
    stopped = stop_reason(history(0, 1, 1, 1), 5, 2)  # best 2 epochs old: stop after 4 epochs
    assert stopped["rule"] == "patience" and stopped["epochs_trained"] == 4 and stopped["best_epoch"] == 1
    assert "epoch 1 (patience 2" in stopped["detail"]
    assert stop_reason(history(0, 0, 0, 0, 0), 5, 2, min_epochs=5)["rule"] == "epochs"  # the cap comes first
    assert stop_reason(history(0, 0, 0), 10, 2, min_epochs=4) is None  # not before min_epochs
    assert stop_reason(history(0, 0, 0, 0), 10, 2, min_epochs=4)["rule"] == "patience"
    assert stop_reason(history(*[0] * 9), 10, None) is None  # no rule: the cap alone
    assert stop_reason(history(*[0] * 10), 10, None)["rule"] == "epochs"
    # The plan's bounds: the earliest stop, and the assumed one (best by min_epochs, stopped patience later).
    assert earliest_stop(2000, 150, 350) == 350 and earliest_stop(2000, 400, 350) == 401
    assert assumed_stop(2000, 150, 350) == 500 and assumed_stop(400, 150, 350) == 400
    assert earliest_stop(2000, None, 350) == assumed_stop(2000, None, 0) == 2000


def test_bad_rules_are_refused_with_the_fix():
    settings = dict(benchmark="pascal", data_root="d", splits_dir="s", fold=0, backbone="resnet18", masking="fm",
                    out_dir="o", random_backbone=True, epochs=10)
    with pytest.raises(ValueError, match="patience must be >= 1"):
        TrainConfig(**settings, patience=0)
    with pytest.raises(ValueError, match=r"min_epochs \(20\) is larger than the epoch cap \(10\)"):
        TrainConfig(**settings, patience=2, min_epochs=20)


@pytest.mark.slow
def test_a_run_stops_on_patience_records_why_and_resumes_when_the_rule_is_relaxed(pascal, tmp_path):
    data, splits = pascal
    # lr so small that the validation mIoU cannot change: epoch 0 stays the best, so patience 1 stops after 2 epochs.
    config = config_for(data, splits, tmp_path / "run", epochs=6, patience=1, lr=1e-12)
    summary = train(config)
    out = Path(config.out_dir)
    assert summary["stopped"]["rule"] == "patience" and summary["epochs"] == 2 and summary["best_epoch"] == 0
    written = json.loads((out / "train_summary.json").read_text())
    assert written["stopped"] == summary["stopped"] and len(read_history(out / "history.jsonl")) == 2
    # Run again as it is: the finished state is re-used, nothing is trained.
    assert train(config)["epochs"] == 2
    # A relaxed rule (no patience, a cap of 3) resumes the same state for one more epoch.
    relaxed = config_for(data, splits, tmp_path / "run", epochs=3, lr=1e-12)
    summary = train(relaxed)
    assert summary["stopped"]["rule"] == "epochs" and summary["epochs"] == 3
    assert [h["epoch"] for h in read_history(out / "history.jsonl")] == [0, 1, 2]
