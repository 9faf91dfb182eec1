"""Stop signals (SLURM's warning ahead of a time limit, preemption, requeue): the training saves at a step
boundary, exits with EXIT_STOPPED, keeps every attempt's log, resumes bit for bit; attempts that make no
progress fail, and Snakemake's next retry refuses."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import hmfs.training.loop as train_module
import hmfs.training.run as run_module
from hmfs.options import resolve_splits_dir
from hmfs.training.attempts import (EXIT_STOPPED, AttemptRecord, StopRequest, TrainingStalled, TrainingStopped,
                           check_progressing, read_attempts)
from hmfs.training.config import TrainConfig
from tests.commands.test_train_evaluate import hmfs_cli, pascal, read_history  # noqa: F401  (pascal is a fixture)

pytestmark = pytest.mark.slow


def config_for(data: Path, splits: Path, out: Path, **changes) -> TrainConfig:
    settings = dict(benchmark="pascal", data_root=str(data), splits_dir=str(resolve_splits_dir(splits)), fold=1,
                    backbone="resnet18", masking="hm", out_dir=str(out), random_backbone=True, img_size=64,
                    batch_size=2, epochs=2, seed=3, train_episodes=24, val_episodes=10, log_every=1)
    settings.update(changes)
    return TrainConfig(**settings)


def cli_args(config: TrainConfig) -> list[str]:
    return ["train", "--benchmark", config.benchmark, "--data-root", config.data_root, "--splits-dir",
            config.splits_dir, "--fold", str(config.fold), "--backbone", config.backbone, "--random-backbone",
            "--masking", config.masking, "--img-size", str(config.img_size), "--batch-size", str(config.batch_size),
            "--epochs", str(config.epochs), "--train-episodes", str(config.train_episodes),
            "--val-episodes", str(config.val_episodes), "--seed", str(config.seed), "--log-every", "1",
            "--out", config.out_dir]


def record_for(config: TrainConfig, snakemake_attempt: int = 1) -> AttemptRecord:
    config.state_path.parent.mkdir(parents=True, exist_ok=True)
    return AttemptRecord(config.state_path.parent / "attempts.jsonl", snakemake_attempt)


def assert_same_training(a: Path, b: Path) -> None:
    for name in ("best.pt", "last.pt"):
        x, y = torch.load(a / name, weights_only=True), torch.load(b / name, weights_only=True)
        assert x["epoch"] == y["epoch"] and x["val_miou"] == y["val_miou"], name
        for key in x["learner"]:
            assert torch.equal(x["learner"][key], y["learner"][key]), f"{name}: {key} differs"
    for x, y in zip(read_history(a / "history.jsonl"), read_history(b / "history.jsonl"), strict=True):
        assert {k: v for k, v in x.items() if k != "seconds"} == {k: v for k, v in y.items() if k != "seconds"}


def signal_at(monkeypatch, stop: StopRequest, signum: int, label: str, step: int) -> None:
    """Deliver `signum` to `stop` right after batch `step` of the pass whose label starts with `label`."""
    real_run_epoch = train_module.run_epoch

    def run_epoch(*args, **kwargs):
        on_step = kwargs.get("on_step")

        def wrapped(done: int) -> None:
            if kwargs.get("label", "").startswith(label) and done == step:
                stop(signum, None)
            if on_step is not None:
                on_step(done)

        kwargs["on_step"] = wrapped
        return real_run_epoch(*args, **kwargs)

    monkeypatch.setattr(train_module, "run_epoch", run_epoch)


@pytest.fixture(scope="module")
def straight(pascal, tmp_path_factory) -> Path:
    data, splits = pascal
    out = tmp_path_factory.mktemp("straight") / "run"
    run_module.train(config_for(data, splits, out))
    return out


def test_signal_stops_at_a_step_then_the_run_resumes_bit_for_bit(pascal, straight, tmp_path, monkeypatch):
    data, splits = pascal
    config = config_for(data, splits, tmp_path / "run")
    state_dir = config.state_path.parent
    train_log = state_dir / "train.log"

    # A real SIGURG to the command: it saves after the current step and exits with EXIT_STOPPED.
    process = subprocess.Popen([sys.executable, "-m", "hmfs", *cli_args(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if train_log.is_file() and "epoch 0 train step 2:" in train_log.read_text():
            break
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be signalled"
    process.send_signal(signal.SIGURG)
    stderr = process.communicate(timeout=300)[1]
    assert process.returncode == EXIT_STOPPED, stderr
    state = torch.load(config.state_path, weights_only=True)
    assert state["epoch"] == 0 and 2 <= state["step"] < 12, (state["epoch"], state["step"])
    assert f"stopped by SIGURG at epoch 0, step {state['step']}" in stderr and "to resume" in stderr
    assert not (Path(config.out_dir) / "best.pt").exists()

    # SIGTERM (preemption, requeue) in the middle of a validation pass: the pass is abandoned, the state
    # holds the whole training pass, and the resumed run validates again from its start.
    stop = StopRequest()
    signal_at(monkeypatch, stop, signal.SIGTERM, "epoch 0 val", 3)
    with pytest.raises(TrainingStopped, match="SIGTERM at epoch 0, step 12"):
        run_module.run_attempt(config, False, stop, record_for(config))
    monkeypatch.undo()

    # The third attempt finishes; the weights and the history equal the uninterrupted run's.
    result = hmfs_cli(*cli_args(config))
    assert "resuming" in result.stderr and "from epoch 0 of 2, step 12" in result.stderr
    assert_same_training(straight, Path(config.out_dir))

    attempts = read_attempts(state_dir / "attempts.jsonl")
    assert [(a["outcome"], a["signal"]) for a in attempts] == [
        ("stopped", "SIGURG"), ("stopped", "SIGTERM"), ("finished", None)]
    assert attempts[1]["from"] == [0, state["step"]] and attempts[1]["to"] == [0, 12]
    # train.log keeps the log of every attempt made through `train` (the CLI's), in order.
    log_text = train_log.read_text()
    # Each stopped attempt's own log ends by saying it stopped, and that this is no failure.
    marks = ["==== attempt 1 of", "SIGURG received", f"stopped by SIGURG at epoch 0, step {state['step']}; the state",
             "(exit code 75, not a failure)", "==== attempt 3 of", "from epoch 0 of 2, step 12", "done: best epoch"]
    assert [log_text.index(m) for m in marks] == sorted(log_text.index(m) for m in marks)


def test_attempts_without_progress_fail_and_the_next_retry_refuses(pascal, straight, tmp_path, monkeypatch):
    data, splits = pascal
    config = config_for(data, splits, tmp_path / "run")
    attempts_path = config.state_path.parent / "attempts.jsonl"

    # A signal before the first step (e.g. a time limit shorter than start-up): the step finishes, is
    # saved, and the attempt fails as stalled instead of asking for another allocation.
    for attempt in (1, 2):
        stop = StopRequest()
        stop(signal.SIGURG, None)
        with pytest.raises(TrainingStalled, match="before this attempt finished a single training step"):
            run_module.run_attempt(config, False, stop, record_for(config, attempt))
        assert torch.load(config.state_path, weights_only=True)["step"] == attempt  # the step is kept
    assert [(a["outcome"], a["snakemake_attempt"]) for a in read_attempts(attempts_path)] == [
        ("no_progress", 1), ("no_progress", 2)]

    # Snakemake's next retry refuses before loading anything.
    monkeypatch.setattr(train_module, "build_dataset", lambda **_: pytest.fail("a refused attempt loaded data"))
    with pytest.raises(TrainingStalled, match="the last 2 attempts of this run"):
        run_module.run_attempt(config, False, StopRequest(), record_for(config, 3))
    monkeypatch.undo()
    refused = subprocess.run([sys.executable, "-m", "hmfs", *cli_args(config), "--attempt", "3"], capture_output=True,
                             text=True, timeout=300)
    assert refused.returncode == 1 and "cannot finish it" in refused.stderr

    # A new snakemake run (attempt 1) starts, and still ends bit for bit where the uninterrupted run does.
    run_module.train(config, attempt=1)
    assert_same_training(straight, Path(config.out_dir))
    assert read_attempts(attempts_path)[-1]["outcome"] == "finished"


def test_failures_are_recorded_and_two_without_progress_stop_the_retries(pascal, tmp_path, monkeypatch):
    data, splits = pascal
    config = config_for(data, splits, tmp_path / "run")

    def broken(**_):
        raise OSError("disk gone")

    monkeypatch.setattr(train_module, "build_dataset", broken)
    for attempt in (1, 2):
        with pytest.raises(OSError, match="disk gone"):
            run_module.train(config, attempt=attempt)
    records = read_attempts(config.state_path.parent / "attempts.jsonl")
    assert [(r["outcome"], r["error"], r["from"], r["to"]) for r in records] == [
        ("failed", "OSError: disk gone", None, None)] * 2
    with pytest.raises(TrainingStalled, match="made no progress \\(OSError: disk gone; OSError: disk gone\\)"):
        run_module.train(config, attempt=3)


def test_progress_check_only_refuses_retries_after_a_streak():
    stalled = {"outcome": "no_progress", "signal": "SIGURG", "from": [0, 0], "to": [0, 1]}
    failed = {"outcome": "failed", "signal": None, "error": "OSError: x", "from": [2, 0], "to": [2, 0]}
    check_progressing([stalled], 2, Path("s"))  # one stall: retry
    check_progressing([stalled, stalled], 1, Path("s"))  # a new snakemake run
    check_progressing([stalled, {**stalled, "outcome": "stopped"}], 5, Path("s"))
    check_progressing([failed, {**failed, "to": [2, 5]}], 3, Path("s"))  # a failure after progress: retry
    for streak in ([stalled, stalled], [stalled, failed], [{**stalled, "outcome": "stopped"}, failed, failed]):
        with pytest.raises(TrainingStalled, match="made no progress"):
            check_progressing(streak, 2, Path("s"))


def test_ctrl_c_stops_at_the_next_step_and_a_second_one_at_once():
    stop = StopRequest()
    with stop.installed():
        assert signal.getsignal(signal.SIGINT) is stop  # Ctrl-C in a terminal: save at the step boundary
        stop(signal.SIGINT, None)
        assert stop.signal_name == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            stop(signal.SIGINT, None)
        stop(signal.SIGTERM, None)  # other signals after the first change nothing
        assert stop.signal_name == "SIGINT"
    assert signal.getsignal(signal.SIGINT) is not stop
