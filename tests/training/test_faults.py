"""Faults injected into a training: unreadable state or weights, a full disk, temporaries of killed saves, a second
trainer on the same run, a killed holder; each ends in one line naming the file or process and what to do."""

from __future__ import annotations

import errno
import json
import logging
import os
import platform
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import hmfs.runtime as runtime
from hmfs.files import DiskFull, UnreadableFile, load_torch_file, remove_stale_temporaries
from hmfs.model.backbone import build_backbone
from hmfs.training.attempts import read_attempts
from hmfs.training.run import train
from hmfs.training.run_lock import LOCK_NAME, RunLocked, acquire, read_lock
from tests.commands.test_train_evaluate import pascal  # noqa: F401  (a fixture)
from tests.training.test_train_signals import cli_args, config_for

pytestmark = pytest.mark.slow


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " ERROR " in line]


def test_unreadable_files_are_named_in_one_line(tmp_path):
    real = tmp_path / "real.pt"
    torch.save({"w": torch.zeros(1000)}, real)
    cases = {"empty": b"", "truncated": real.read_bytes()[:700], "random": random.Random(0).randbytes(4096)}
    reasons = {"empty": "ends early", "truncated": "truncated or damaged archive", "random": "not a torch file"}
    for name, data in cases.items():
        path = tmp_path / f"{name}.pt"
        path.write_bytes(data)
        with pytest.raises(UnreadableFile) as caught:
            load_torch_file(path, "training state", "delete it")
        message = str(caught.value)
        assert "\n" not in message and str(path) in message and f"({len(data):,} bytes; " in message, message
        assert reasons[name] in message and message.endswith(": delete it") and "weights_only" not in message
    # A pickle that would run code is refused unread, never executed.
    evil = tmp_path / "evil.pt"
    torch.save({"module": torch.nn.ReLU()}, evil)
    with pytest.raises(UnreadableFile, match="Python objects other than tensors, which are never unpickled here"):
        load_torch_file(evil, "checkpoint", "x")
    # Unreadable backbone weights name the file and how to get it again.
    (tmp_path / "resnet18.pth").write_bytes(b"\x00" * 64)
    with pytest.raises(UnreadableFile, match=r"backbone weights file .*resnet18.pth cannot be read \(64 bytes; .*fetch it again"):
        build_backbone("resnet18", tmp_path / "resnet18.pth")


def test_an_unreadable_state_stops_the_command_with_one_line(pascal, tmp_path):
    data, splits = pascal
    config = config_for(data, splits, tmp_path / "run")
    config.state_path.parent.mkdir(parents=True)
    config.state_path.write_bytes(b"PK\x03\x04 half a zip")
    result = subprocess.run([sys.executable, "-m", "hmfs", *cli_args(config)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    (line,) = error_lines(result.stderr)
    assert f"training state {config.state_path} cannot be read" in line and f"delete {config.state_path.parent}" in line
    assert "Traceback" not in result.stderr and "weights_only=False" not in result.stderr
    assert read_attempts(config.state_path.parent / "attempts.jsonl")[-1]["outcome"] == "failed"


class FillingDisk:
    """os.fdopen for the atomic writes' temporary files: a file system with room for `room` more bytes (then ENOSPC)."""

    def __init__(self, room: int, real=os.fdopen):
        self.room, self.real = room, real

    def __call__(self, fd, mode="r", *args, **kwargs):
        handle = self.real(fd, mode, *args, **kwargs)
        return LimitedFile(handle, self) if "w" in mode else handle


class LimitedFile:
    def __init__(self, handle, disk: FillingDisk):
        self.handle, self.disk = handle, disk

    def write(self, data) -> int:
        if len(data) > self.disk.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.disk.room -= len(data)
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()


def test_a_full_disk_names_the_file_and_the_bytes_and_keeps_the_last_good_state(pascal, tmp_path, monkeypatch):
    data, splits = pascal
    config = config_for(data, splits, tmp_path / "run", checkpoint_every=1)
    disk = FillingDisk(room=10**12)
    monkeypatch.setattr(runtime.os, "fdopen", disk)
    real_save = runtime.atomic_torch_save
    saves = []

    def save(path, obj):
        saves.append(path)
        if len(saves) == 3:
            disk.room = 1000  # the third save finds the disk full
        real_save(path, obj)
    monkeypatch.setattr("hmfs.training.loop.atomic_torch_save", save)
    with pytest.raises(DiskFull) as caught:
        train(config)
    message = str(caught.value)
    assert f"no space left to write {config.state_path}: it needs " in message and "bytes free on that" in message
    needed = int(message.split("it needs ")[1].split(" bytes")[0].replace(",", ""))
    assert needed > 100_000  # the learner, Adam's moments and the best weights
    record = read_attempts(config.state_path.parent / "attempts.jsonl")[-1]
    assert record["outcome"] == "failed" and "DiskFull" in record["error"]
    assert record["to"] == [0, 2]  # the last save that succeeded, not the one that failed
    assert torch.load(config.state_path, weights_only=True)["step"] == 2
    assert not list(config.state_path.parent.glob(".*.tmp"))  # nothing half-written left behind


def test_stale_temporaries_are_removed_when_a_run_starts(pascal, tmp_path):
    data, splits = pascal
    config = config_for(data, splits, tmp_path / "run", epochs=1)
    state_dir, out = config.state_path.parent, Path(config.out_dir)
    for folder in (state_dir, out):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ".state.pt.k2j3h4.tmp").write_bytes(b"x" * 5000)
    (out / "keep.tmp").write_text("not ours")  # not an atomic write's name
    assert remove_stale_temporaries(state_dir) == 5000
    train(config)
    assert not list(state_dir.glob(".*.tmp")) and not list(out.glob(".*.tmp")) and (out / "keep.tmp").exists()


def test_a_second_trainer_is_refused_while_the_first_lives_and_takes_over_when_it_is_gone(pascal, tmp_path, caplog):
    caplog.set_level(logging.INFO)  # train.log takes what the root logger lets through
    data, splits = pascal
    config = config_for(data, splits, tmp_path / "run", epochs=1)
    state_dir = config.state_path.parent
    state_dir.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (state_dir / LOCK_NAME).write_text(json.dumps({"host": platform.node(), "pid": holder.pid, "since": "then",
                                                       "slurm_job_id": "4242"}))
        with pytest.raises(RunLocked, match=rf"is being trained by process {holder.pid} on {platform.node()} \(since "
                                            r"then, SLURM job 4242; process \d+ on this host is alive\): wait for it"):
            train(config)
        result = subprocess.run([sys.executable, "-m", "hmfs", *cli_args(config)], capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 1 and f"is being trained by process {holder.pid}" in error_lines(result.stderr)[0]
        assert read_lock(state_dir / LOCK_NAME)["pid"] == holder.pid  # left alone
    finally:
        holder.kill()
        holder.wait()
    # The holder is gone (as after SIGKILL or a lost node): its attempt is recorded as killed, the lock taken over.
    (state_dir / LOCK_NAME).write_text(json.dumps({"host": platform.node(), "pid": holder.pid, "since": "then",
                                                   "start": [0, 0], "saved": [0, 4], "snakemake_attempt": 1}))
    train(config)
    attempts = read_attempts(state_dir / "attempts.jsonl")
    assert [(a["outcome"], a["from"], a["to"]) for a in attempts] == [("killed", [0, 0], [0, 4]), ("finished", [0, 0], [1, 0])]
    train_log = (state_dir / "train.log").read_text()
    assert "==== attempt 2 of" in train_log
    assert "24 training / 10 validation episodes" in train_log  # the episodes it trains on (train_episodes), not the split's
    assert not (state_dir / LOCK_NAME).exists()  # released at the end


def test_a_lock_on_another_host_counts_as_gone_once_it_is_not_refreshed(tmp_path):
    lock = tmp_path / LOCK_NAME
    lock.write_text(json.dumps({"host": "node-elsewhere", "pid": 1, "since": "then"}))
    with pytest.raises(RunLocked, match="node-elsewhere .*refreshed \\d+ s ago"):
        acquire(tmp_path, {})
    old = lock.stat().st_mtime - 3600
    os.utime(lock, (old, old))
    taken = acquire(tmp_path, {"snakemake_attempt": 1})
    assert taken.previous["host"] == "node-elsewhere" and read_lock(lock)["pid"] == os.getpid()
    taken.release()
    assert not lock.exists()


def test_an_attempt_record_cut_short_by_a_kill_is_skipped(tmp_path):
    path = tmp_path / "attempts.jsonl"
    path.write_text('{"outcome": "stopped", "signal": "SIGURG", "from": [0, 0], "to": [1, 0]}\n{"outcome": "fin')
    assert [a["outcome"] for a in read_attempts(path)] == ["stopped"]  # the next attempt starts instead of crashing
    assert read_attempts(tmp_path / "none.jsonl") == []
