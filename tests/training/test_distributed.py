"""Data-parallel training on the CPU with the gloo backend, two processes under torchrun: the weights equal a
one-process run's with the same global batch (to float tolerance), a signal to one rank stops both at the same
step, and the resumed run equals an uninterrupted one bit for bit; validation sums are exact."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hmfs.data import build_dataset
from hmfs.engine import run_epoch
from hmfs.metrics import IoUAccumulator
from hmfs.model import HSNet
from hmfs.training.attempts import read_attempts
from hmfs.training.components import make_loader
from hmfs.training.distributed import (Ranks, process_group, ranks_from_environment, reduce_accumulator, shard,
                                       split_batches)
from tests.commands.test_train_evaluate import pascal, read_history  # noqa: F401  (pascal is a fixture)
from tests.training.test_train_signals import assert_same_training, cli_args, config_for

# Weights after data-parallel steps differ from one process's only in the order floats are added (the
# gradient of a global batch as two halves, averaged over ranks). Adam's steps are about lr (1e-3) in
# size whatever the gradient's scale, so that reordering moves weights by up to ~0.2 % of one step:
# measured largest difference 1.8e-6 after 6 steps (weights up to 0.035); the bound is 1 % of a step.
WEIGHT_TOLERANCE = dict(rtol=1e-4, atol=1e-5)


def test_each_rank_takes_its_share_of_every_global_batch():
    order = list(range(10))
    one = split_batches(order, 4, Ranks())
    assert [s.indices for s in one] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] and {s.weight for s in one} == {1.0}
    ranks = [split_batches(order, 4, Ranks(r, 3, r)) for r in range(3)]
    for step in range(3):  # together the ranks cover each global batch once, in order
        counted = [i for shares in ranks for i in (shares[step].indices if shares[step].counted else [])]
        assert counted == one[step].indices
        # weights: episodes here x ranks / global batch, so the ranks' average gradient is the global batch's
        for shares in ranks:
            if shares[step].counted:
                assert shares[step].weight == len(shares[step].indices) * 3 / len(one[step].indices)
    # the short last batch (2 episodes, 3 ranks): rank 2 computes a stand-in with weight 0
    assert [(s[2].indices, s[2].weight, s[2].counted) for s in ranks] == [
        ([8], 1.5, True), ([9], 1.5, True), ([8], 0.0, False)]
    assert shard(range(7), Ranks(1, 2, 1)) == [1, 3, 5]


def test_torchrun_variables_are_read_and_checked():
    assert ranks_from_environment({}) == Ranks()
    assert ranks_from_environment({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}) == Ranks(1, 2, 1)
    with pytest.raises(ValueError, match="RANK/LOCAL_RANK are missing"):
        ranks_from_environment({"WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match="RANK 2 outside"):
        ranks_from_environment({"RANK": "2", "WORLD_SIZE": "2"})


def torchrun(args: list[str], ranks: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}",
            "-m", "hmfs", "--threads", "1", *args]


def run_ok(command: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-4000:]
    return result


pytestmark = pytest.mark.slow


def test_two_gloo_ranks_train_like_one_process_and_resume_bit_for_bit(pascal, tmp_path):
    data, splits = pascal
    # 9 episodes in batches of 4: the last global batch has one episode, so one rank computes a stand-in.
    settings = dict(epochs=2, batch_size=4, train_episodes=9, val_episodes=10, checkpoint_every=1)
    single = config_for(data, splits, tmp_path / "single", **settings)
    run_ok([sys.executable, "-m", "hmfs", "--threads", "1", *cli_args(single), "--checkpoint-every", "1"])
    double = config_for(data, splits, tmp_path / "double", **settings)
    result = run_ok(torchrun([*cli_args(double), "--checkpoint-every", "1"]))
    assert "rank 0 of 2 joined the gloo process group" in result.stderr

    one, two = Path(single.out_dir), Path(double.out_dir)
    for name in ("last.pt", "best.pt"):
        a, b = torch.load(one / name, weights_only=True), torch.load(two / name, weights_only=True)
        for key in a["learner"]:
            torch.testing.assert_close(b["learner"][key], a["learner"][key], **WEIGHT_TOLERANCE, msg=f"{name} {key}")
    history_one, history_two = read_history(one / "history.jsonl"), read_history(two / "history.jsonl")
    for x, y in zip(history_one, history_two, strict=True):
        assert y["train_loss"] == pytest.approx(x["train_loss"], rel=1e-4)
        assert y["val_miou"] == pytest.approx(x["val_miou"], abs=0.5)  # near-equal weights, near-equal predictions
    (attempt,) = read_attempts(Path(f"{two}.state") / "attempts.jsonl")  # rank 0 alone records the attempt
    assert attempt["outcome"] == "finished" and attempt["ranks"] == 2

    # A stop signal to one of the two workers: both stop at the same step boundary, rank 0 saves.
    resumed = config_for(data, splits, tmp_path / "resumed", **settings)
    state_path = resumed.state_path
    process = subprocess.Popen(torchrun([*cli_args(resumed), "--checkpoint-every", "1"]), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not state_path.is_file():
        time.sleep(0.05)
    workers = subprocess.run(["ps", "-o", "pid=", "--ppid", str(process.pid)], capture_output=True, text=True).stdout.split()
    assert len(workers) == 2 and process.poll() is None, "the run ended before it could be signalled"
    os.kill(int(workers[-1]), signal.SIGUSR1)
    stderr = process.communicate(timeout=300)[1]
    assert process.returncode != 0, "the stopped run must not report success"
    (stopped,) = read_attempts(state_path.parent / "attempts.jsonl")
    assert stopped["outcome"] == "stopped" and stopped["signal"] == "SIGUSR1", (stopped, stderr[-3000:])
    state = torch.load(state_path, weights_only=True)
    assert [state["epoch"], state["step"]] == stopped["to"] and state["epoch"] * 3 + state["step"] < 6
    # Run again: it resumes from the saved step and ends where the uninterrupted two-rank run ends, bit for bit.
    result = run_ok(torchrun([*cli_args(resumed), "--checkpoint-every", "1"]))
    assert "resuming" in result.stderr
    assert_same_training(two, Path(resumed.out_dir))


def validate_shard(rank: int, world: int, port: int, data: Path, splits: Path, out: Path) -> None:
    """One rank's validation pass over its shard, summed over the ranks; rank 0 saves the sums (spawned by the test)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    ranks = Ranks(rank, world, rank) if world > 1 else Ranks()
    device = torch.device("cpu")
    with process_group(ranks, device):
        dataset = build_dataset("pascal", data, splits, fold=1, split="val", shot=1, img_size=64, seed=0,
                                num_episodes=10)
        torch.manual_seed(0)
        model = HSNet("resnet18", "hm", random_backbone=True)
        meter = IoUAccumulator(dataset.class_ids, dataset.nclass)
        mine = shard(range(len(dataset)), ranks)
        run_epoch(model, make_loader(dataset, [mine[i:i + 3] for i in range(0, len(mine), 3)], 0, device), meter, device)
        reduce_accumulator(meter, ranks)
        if ranks.main:
            torch.save(meter.state_dict(), out)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sharded_validation_sums_are_exactly_the_single_process_ones(pascal, tmp_path):
    data, splits = pascal
    validate_shard(0, 1, free_port(), data, splits, tmp_path / "one.pt")
    torch.multiprocessing.spawn(validate_shard, args=(2, free_port(), data, splits, tmp_path / "two.pt"), nprocs=2)
    one, two = (torch.load(tmp_path / name, weights_only=True) for name in ("one.pt", "two.pt"))
    for key in ("intersection", "union", "episodes"):
        assert torch.equal(one[key], two[key]), key
    assert two["episodes"].sum() == 10 and two["loss_count"] == one["loss_count"] == 4  # batches of 3: 4 vs 2 + 2
