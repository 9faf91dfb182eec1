"""One attempt at one training run: its lock, its logs and records, the Trainer driven until a stopping rule ends it."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from hmfs.files import remove_stale_temporaries
from hmfs.runtime import resolve_device
from hmfs.training.attempts import (EXIT_STOPPED, AttemptRecord, StopRequest, TrainingStalled, TrainingStopped,
                                    attempt_log, check_progressing, read_attempts, record_killed)
from hmfs.training.config import TrainConfig
from hmfs.training.curves import Curves
from hmfs.training.distributed import Ranks, process_group, rank_device, ranks_from_environment
from hmfs.training.loop import Trainer
from hmfs.training.run_lock import RunLock, held

log = logging.getLogger(__name__)


def train(config: TrainConfig, restart_finished: bool = False, attempt: int = 1) -> dict:
    """Train (or resume) one run; returns the summary that is also written to `train_summary.json`.

    Outputs in `out_dir` (written once, atomically, at the end): best.pt (best validation mIoU, as
    HSNet selects), last.pt, history.jsonl (one line per epoch), config.json, train_summary.json
    (with `stopped`: which rule ended the run, `config.epochs` or `config.patience`, see
    hmfs.training.stopping), and TensorBoard's event files in `tensorboard/` (unless
    `config.tensorboard` is off). The resumable state (learner, optimizer, RNG, history, best
    weights) is saved after every epoch in the state folder; running the same command again resumes
    from it. A state that is already finished is re-used as it is (nothing is trained), unless
    `restart_finished`: then the run trains again from scratch.

    One live trainer per run: the state folder's lock (hmfs.training.run_lock) names its holder; a
    second trainer on the same run raises RunLocked, and a holder that is gone (killed, its node
    lost) has its attempt recorded as `killed` and its lock taken over. Temporary files of
    interrupted saves are removed on start.

    Under torchrun (WORLD_SIZE > 1) each process trains its share of every global batch
    (hmfs.training.distributed); rank 0 writes every file and holds the lock, and all ranks stop at the same step.

    A stop signal (STOP_SIGNALS: SLURM's warning ahead of the time limit, preemption, requeue) makes
    the run save its state after the current training step (or abandon the current validation pass)
    and raise TrainingStopped; the next run resumes bit for bit. The state folder also keeps the log
    of every attempt (train.log, appended, ending with how the attempt ended) and one record per
    attempt (attempts.jsonl); an attempt that stops before finishing a single step raises
    TrainingStalled, and so does a retry (`attempt` > 1, Snakemake's attempt number) after
    NO_PROGRESS_LIMIT such attempts (see `check_progressing`).
    """
    ranks = ranks_from_environment()
    device = resolve_device(rank_device(config.device, ranks))
    state_dir = config.state_path.parent
    state_dir.mkdir(parents=True, exist_ok=True)
    this_attempt = AttemptRecord(state_dir / "attempts.jsonl", attempt, write=ranks.main)
    if ranks.distributed:
        this_attempt.where["ranks"] = ranks.world
    with attempt_log(state_dir / "train.log", ranks), \
            held(state_dir, {**this_attempt.where, "out_dir": config.out_dir}, hold=ranks.main) as lock, \
            StopRequest().installed() as stop, process_group(ranks, device):
        if lock is not None:
            if lock.previous is not None:
                record_killed(this_attempt.path, lock.previous)
            for folder in (state_dir, Path(config.out_dir)):
                remove_stale_temporaries(folder)
        try:
            return run_attempt(config, restart_finished, stop, this_attempt, ranks, device, lock)
        except TrainingStopped as stopped:  # an expected stop, said in the run's own log too
            log.warning("%s; the state in %s holds it: run the same command again to resume (exit code %d, "
                        "not a failure)", stopped, state_dir, EXIT_STOPPED)
            raise
        except TrainingStalled as stalled:  # recorded (or refused unrecorded) where it is raised
            log.error("%s", stalled)
            raise
        except Exception as error:  # TrainingDiverged, an unreadable file, a full disk, a bug
            log.error("attempt failed: %s: %s", type(error).__name__, error)
            this_attempt.write("failed", stop.signal_name, error=f"{type(error).__name__}: {error}")
            raise


def run_attempt(config: TrainConfig, restart_finished: bool, stop: StopRequest, this_attempt: AttemptRecord,
                ranks: Ranks = Ranks(), device: torch.device | None = None, lock: RunLock | None = None) -> dict:
    """One attempt: refuse a retry that cannot progress, resume (or start), train until a stopping rule says so, finish."""
    attempts = read_attempts(this_attempt.path)
    log.info("==== attempt %d of %s: %s ====", len(attempts) + 1, Path(config.out_dir),
             ", ".join(f"{k}={v}" for k, v in this_attempt.where.items() if v is not None))
    check_progressing(attempts, this_attempt.where["snakemake_attempt"], config.state_path)
    trainer = Trainer(config, stop, this_attempt, ranks, device)
    trainer.resume(restart_finished)
    curves = Curves.open(config, ranks, attempt=len(attempts) + 1, start=this_attempt.start,
                         train_episodes=trainer.episodes_per_epoch)
    if lock is not None:
        lock.update(start=this_attempt.start, saved=this_attempt.saved, epochs=config.epochs,
                    train_episodes=trainer.episodes_per_epoch)

        def on_step(phase: str, epoch: int, step: int, steps: int) -> None:
            progress = dict(phase=phase, epoch=epoch, step=step, steps=steps, saved=this_attempt.saved)
            if this_attempt.saved != lock.holder.get("saved"):  # a new save: the record of a kill must know it
                lock.update(**progress)
            else:
                lock.heartbeat(**progress)
        trainer.on_step = on_step

    def on_epoch(record: dict) -> None:
        curves.epoch(record)
        if lock is not None:  # the state of this epoch is saved: a kill from here on loses none of it
            lock.update(phase="epoch done", epoch=record["epoch"] + 1, step=0, steps=None, saved=this_attempt.saved)
    trainer.on_epoch = on_epoch
    try:
        while (reason := trainer.stop_reason()) is None:
            trainer.train_epoch(len(trainer.history))
        return trainer.finish(reason)
    finally:
        curves.close()
