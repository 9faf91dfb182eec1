"""End-to-end on a tiny synthetic PASCAL: train -> kill -> resume -> evaluate, through the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hmfs.commands.evaluate import evaluate
from hmfs.training.attempts import read_attempts

pytestmark = pytest.mark.slow


def hmfs_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "hmfs", *args], capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"hmfs {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def pascal(tmp_path_factory) -> tuple[Path, Path]:
    """A small prepared synthetic PASCAL-5i: (data root, splits dir)."""
    root = tmp_path_factory.mktemp("pascal")
    hmfs_cli("generate", "--out", str(root / "raw"), "--benchmark", "pascal", "--image-size", "96",
             "--pascal-train", "8", "--pascal-val", "6")
    hmfs_cli("prepare", "--benchmark", "pascal", "--raw", str(root / "raw"), "--out", str(root / "data"),
             "--splits-out", str(root / "splits"))
    return root / "data", root / "splits"


def train_args(data: Path, splits: Path, out: Path, epochs: int = 3) -> list[str]:
    return ["train", "--benchmark", "pascal", "--data-root", str(data), "--splits-dir", str(splits), "--fold", "1",
            "--backbone", "resnet18", "--random-backbone", "--masking", "hm", "--img-size", "64",
            "--batch-size", "2", "--epochs", str(epochs), "--train-episodes", "12", "--val-episodes", "10",
            "--seed", "3", "--out", str(out)]


def tensorboard_scalars(folder: Path) -> dict[str, list]:
    """Every scalar curve of a TensorBoard folder, as TensorBoard itself reads them (purged points dropped)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: events.Scalars(tag) for tag in events.Tags()["scalars"]}


def read_history(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_killed_run_resumes_to_identical_weights_and_metrics(pascal, tmp_path):
    data, splits = pascal
    straight = tmp_path / "straight"
    hmfs_cli(*train_args(data, splits, straight))

    resumed = tmp_path / "resumed"
    progress = Path(str(resumed) + ".state") / "history.jsonl"
    process = subprocess.Popen([sys.executable, "-m", "hmfs", *train_args(data, splits, resumed)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if progress.is_file() and len(progress.read_text().splitlines()) >= 1:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_at_kill = len(progress.read_text().splitlines())
    assert 1 <= done_at_kill < 3
    assert not (resumed / "best.pt").exists()  # no final output from a killed run

    rerun = hmfs_cli(*train_args(data, splits, resumed))
    assert f"resuming {resumed} from epoch {done_at_kill}" in rerun.stderr
    # The killed attempt is recorded as such (from its lock) and the resumed one counts as the second.
    attempts = read_attempts(Path(str(resumed) + ".state") / "attempts.jsonl")
    assert [a["outcome"] for a in attempts] == ["killed", "finished"] and attempts[0]["to"][0] == done_at_kill
    assert "==== attempt 2 of" in rerun.stderr and "was killed without saving its end" in rerun.stderr

    for name in ("best.pt", "last.pt"):
        a = torch.load(straight / name, weights_only=True)
        b = torch.load(resumed / name, weights_only=True)
        assert a["epoch"] == b["epoch"] and a["val_miou"] == b["val_miou"]
        for key in a["learner"]:
            assert torch.equal(a["learner"][key], b["learner"][key]), f"{name}: {key} differs"
    history_a, history_b = read_history(straight / "history.jsonl"), read_history(resumed / "history.jsonl")
    assert len(history_a) == len(history_b) == 3
    for a, b in zip(history_a, history_b):
        for key in ("epoch", "train_loss", "train_miou", "train_fb_iou", "val_loss", "val_miou", "val_fb_iou", "best_epoch"):
            assert a[key] == b[key], key
    # TensorBoard's curves: one point per epoch, equal to the history, across the kill; attempt boundaries marked.
    scalars = tensorboard_scalars(resumed / "tensorboard")
    assert [(p.step, p.value) for p in scalars["val/miou"]] == [(h["epoch"] + 1, pytest.approx(h["val_miou"]))
                                                                for h in history_b]
    assert [p.step for p in scalars["run/attempt"]] == [0, done_at_kill]
    assert {"train/loss", "train/fb_iou", "val/loss", "train/learning_rate", "speed/episodes_per_second"} <= set(scalars)
    summary = json.loads((resumed / "train_summary.json").read_text())
    assert summary["epochs"] == 3 and summary["config"]["seed"] == 3
    assert summary["best_val_miou"] == max(h["val_miou"] for h in history_a)
    # The learner actually learned something: the loss went down from the first epoch.
    assert history_a[-1]["train_loss"] < history_a[0]["train_loss"]

    # Running the finished command again changes nothing; other result-changing flags are refused.
    again = hmfs_cli(*train_args(data, splits, resumed))
    assert "resuming" in again.stderr and "epoch 1/" not in again.stderr  # nothing trained
    assert torch.equal(torch.load(resumed / "best.pt", weights_only=True)["learner"]["decoder2.2.bias"],
                       torch.load(straight / "best.pt", weights_only=True)["learner"]["decoder2.2.bias"])
    changed = hmfs_cli(*[a if a != "hm" else "fm" for a in train_args(data, splits, resumed)], check=False)
    assert changed.returncode == 2 and "masking: 'hm' -> 'fm'" in changed.stderr

    # Evaluate the resumed best checkpoint, 1-shot and 5-shot, through the CLI.
    for shot in ("1", "5"):
        out = tmp_path / f"eval_{shot}shot.json"
        hmfs_cli("evaluate", "--benchmark", "pascal", "--data-root", str(data), "--splits-dir", str(splits),
                 "--fold", "1", "--backbone", "resnet18", "--random-backbone", "--masking", "hm", "--img-size", "64",
                 "--shot", shot, "--episodes", "20", "--batch-size", "4", "--checkpoint", str(resumed / "best.pt"),
                 "--out", str(out), "--predictions", str(tmp_path / f"pred_{shot}.npz"), "--num-predictions", "3")
        result = json.loads(out.read_text())
        assert result["episodes"] == 20 and result["shot"] == int(shot)
        assert sorted(map(int, result["class_iou"])) == [5, 6, 7, 8, 9]  # PASCAL fold 1, 0-based
        assert 0 <= result["miou"] <= 100 and 0 <= result["fb_iou"] <= 100
        assert result["checkpoint_sha256"] and result["timings"]["ms_per_episode"] > 0
        assert result["seed"] == 0 and result["environment"]["torch"] == torch.__version__
        saved = np.load(tmp_path / f"pred_{shot}.npz")
        assert saved["pred"].shape == (3, 64, 64) and saved["support_names"].shape == (3, int(shot))

    # --restart-finished (what the workflow passes): a finished state is trained again from scratch,
    # to the same weights; a state with another config is then replaced instead of refused.
    restarted = hmfs_cli(*train_args(data, splits, resumed), "--restart-finished")
    assert "training again from scratch" in restarted.stderr and "epoch 1/3" in restarted.stderr
    assert torch.equal(torch.load(resumed / "best.pt", weights_only=True)["learner"]["decoder2.2.bias"],
                       torch.load(straight / "best.pt", weights_only=True)["learner"]["decoder2.2.bias"])
    # Trained again from scratch: TensorBoard drops the old points, so each epoch still appears once.
    assert [p.step for p in tensorboard_scalars(resumed / "tensorboard")["val/miou"]] == [1, 2, 3]
    switched = hmfs_cli(*[a if a != "hm" else "fm" for a in train_args(data, splits, resumed, epochs=1)],
                        "--restart-finished")
    assert "training again from scratch" in switched.stderr
    assert json.loads((resumed / "config.json").read_text())["masking"] == "fm"


def test_evaluation_does_not_depend_on_batch_size(pascal, tmp_path):
    data, splits = pascal
    out = tmp_path / "run"
    hmfs_cli(*train_args(data, splits, out, epochs=1))
    common = dict(benchmark="pascal", data_root=data, splits_dir=splits, fold=1, backbone="resnet18", masking="hm",
                  checkpoint=out / "best.pt", random_backbone=True, img_size=64, episodes=12, shot=2,
                  keep_predictions=12)
    one, pred_one = evaluate(batch_size=1, **common)
    four, pred_four = evaluate(batch_size=4, **common)
    assert [p["query_name"] for p in pred_one] == [p["query_name"] for p in pred_four]
    assert [p["support_names"] for p in pred_one] == [p["support_names"] for p in pred_four]
    agree = sum(int((a["pred"] == b["pred"]).sum()) for a, b in zip(pred_one, pred_four))
    assert agree / (12 * 64 * 64) > 0.999
    assert one["miou"] == pytest.approx(four["miou"], abs=0.5)
    assert one["class_episodes"] == four["class_episodes"]

    # bf16 / fp16 autocast (meant for GPUs; here checked to run and to agree with fp32 closely).
    for precision in ("bf16", "fp16"):
        low, pred_low = evaluate(batch_size=4, precision=precision, **common)
        agree = sum(int((a["pred"] == b["pred"]).sum()) for a, b in zip(pred_four, pred_low))
        assert agree / (12 * 64 * 64) > 0.95 and low["precision"] == precision, precision
    with pytest.raises(ValueError, match="unknown precision 'fp8'; accepted: fp32, bf16, fp16"):
        evaluate(batch_size=4, precision="fp8", **common)

    # Original-size labels: the prediction is made at each query file's own size.
    original, pred_original = evaluate(batch_size=1, use_original_imgsize=True, **common)
    assert original["episodes"] == 12 and 0 <= original["miou"] <= 100
    sizes = {p["pred"].shape for p in pred_original}
    assert (64, 64) not in sizes and len(sizes) > 1  # synthetic images are 72..120 px, not square
    with pytest.raises(ValueError, match="--batch-size 1"):
        evaluate(batch_size=2, use_original_imgsize=True, **common)


def test_cli_errors_name_the_bad_value(pascal, tmp_path):
    data, splits = pascal
    bad = hmfs_cli(*[a if a != "resnet18" else "resnet51" for a in train_args(data, splits, tmp_path / "x")], check=False)
    assert bad.returncode == 2 and "resnet51" in bad.stderr and "resnet50" in bad.stderr
    bad = hmfs_cli(*[a if a != "hm" else "zm" for a in train_args(data, splits, tmp_path / "x")], check=False)
    assert bad.returncode == 2 and "'zm'" in bad.stderr
    missing = tmp_path / "no-such-data"
    bad = hmfs_cli(*[a if a != str(data) else str(missing) for a in train_args(data, splits, tmp_path / "x")], check=False)
    assert bad.returncode == 2 and str(missing) in bad.stderr
    bad = hmfs_cli("evaluate", "--benchmark", "pascal", "--data-root", str(data), "--splits-dir", str(splits),
                   "--backbone", "resnet18", "--random-backbone", "--masking", "hm", "--img-size", "64",
                   "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "e.json"), check=False)
    assert bad.returncode == 2 and "missing.pt" in bad.stderr
    bad = hmfs_cli("train", "--benchmark", "pascal", "--data-root", str(data), "--backbone", "resnet18",
                   "--masking", "hm", "--out", str(tmp_path / "y"), check=False)
    assert bad.returncode == 2 and "--backbone-weights" in bad.stderr


def test_augmented_training_is_seeded(pascal, tmp_path):
    data, splits = pascal
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        hmfs_cli(*train_args(data, splits, out, epochs=1), "--augment")
        runs.append(read_history(out / "history.jsonl")[0])
    plain = tmp_path / "plain"
    hmfs_cli(*train_args(data, splits, plain, epochs=1))
    assert runs[0]["train_loss"] == runs[1]["train_loss"]  # same seed, same augmented episodes
    assert runs[0]["train_loss"] != read_history(plain / "history.jsonl")[0]["train_loss"]
    assert json.loads((tmp_path / "a" / "config.json").read_text())["augment"] is True


def test_run_killed_mid_epoch_resumes_bit_for_bit(pascal, tmp_path):
    data, splits = pascal
    straight = tmp_path / "straight"
    hmfs_cli(*train_args(data, splits, straight, epochs=2))

    resumed = tmp_path / "resumed"
    state_path = Path(str(resumed) + ".state") / "state.pt"
    command = [sys.executable, "-m", "hmfs", *train_args(data, splits, resumed, epochs=2), "--checkpoint-every", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if state_path.is_file() and torch.load(state_path, weights_only=True)["step"] >= 2:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGSTOP)  # freeze it, so the state read below is the one it dies with
    at_kill = torch.load(state_path, weights_only=True)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert at_kill["epoch"] == 0 and 2 <= at_kill["step"] <= 6  # 12 episodes / batch 2 = 6 steps

    rerun = hmfs_cli(*train_args(data, splits, resumed, epochs=2), "--checkpoint-every", "1")
    assert f"from epoch 0 of 2, step {at_kill['step']}" in rerun.stderr
    for name in ("best.pt", "last.pt"):
        a = torch.load(straight / name, weights_only=True)
        b = torch.load(resumed / name, weights_only=True)
        assert all(torch.equal(a["learner"][k], b["learner"][k]) for k in a["learner"]), name
    for a, b in zip(read_history(straight / "history.jsonl"), read_history(resumed / "history.jsonl")):
        assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
