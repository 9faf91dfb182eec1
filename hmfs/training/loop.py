"""HSNet's training recipe for one run, seeded and resumable: `Trainer` holds one attempt's state (hmfs.training.run drives it)."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader

from hmfs.data import build_dataset
from hmfs.engine import NonFiniteStep, gradient_scaler, learner_optimizer, run_epoch
from hmfs.files import load_torch_file
from hmfs.metrics import IoUAccumulator
from hmfs.model import load_hsnet_checkpoint
from hmfs.model.feature_cache import FeatureCache
from hmfs.runtime import (atomic_torch_save, atomic_write_json, atomic_write_text, environment, git_commit, resolve_device,
                          seed_everything, sha256_file)
from hmfs.training.attempts import AttemptRecord, StopRequest, TrainingDiverged, TrainingStalled, TrainingStopped
from hmfs.training.components import (build_model, checkpoint, epoch_order, json_line, learner_weights,
                                     make_loader, train_forward)
from hmfs.training.config import TrainConfig, check_resumable
from hmfs.training.distributed import Ranks, reduce_accumulator, shard, split_batches, summed_state
from hmfs.training.stopping import stop_reason

log = logging.getLogger(__name__)

STATE_FORMAT = "hmfs-train-state-v1"


class Trainer:
    """One attempt's data, model, optimizer and resumable state (`state.pt` in the run's state folder)."""

    def __init__(self, config: TrainConfig, stop: StopRequest, this_attempt: AttemptRecord, ranks: Ranks = Ranks(),
                 device: torch.device | None = None):
        self.config, self.stop, self.this_attempt, self.ranks = config, stop, this_attempt, ranks
        self.state_path = config.state_path
        self.device = device if device is not None else resolve_device(config.device)
        common = dict(benchmark=config.benchmark, data_root=Path(config.data_root), splits_dir=Path(config.splits_dir),
                      fold=config.fold, shot=1, img_size=config.img_size)
        self.train_set = build_dataset(split="trn", seed=config.seed, augment=config.augment,
                                       augment_ops=config.augment_ops, **common)
        self.val_set = build_dataset(split="val", seed=config.val_seed, num_episodes=config.val_episodes, **common)
        self.model = build_model(config, self.device)
        self.optimizer = learner_optimizer(self.model, config.lr)
        self.scaler = gradient_scaler(self.device, config.precision)
        self.commit = git_commit()  # once per run: states may be saved every step
        self.backbone_sha = sha256_file(config.backbone_weights) if config.backbone_weights else None
        # Training episodes per epoch: the split, or the first `train_episodes` of its shuffled order.
        self.episodes_per_epoch = min(len(self.train_set), config.train_episodes or len(self.train_set))
        self.start_step, self.history, self.partial = 0, [], None
        self.best = {"epoch": None, "val_miou": float("-inf"), "learner": None}
        # Validation images are never augmented; training ones only without --augment.
        self.val_cache = FeatureCache(self.model) if config.cache_features else None
        self.train_cache = self.val_cache if config.cache_features and not config.augment else None
        self.train_forward: nn.Module | None = None  # built after resume (DistributedDataParallel syncs the ranks then)
        self.val_loader: DataLoader | None = None  # built once: the same episodes every epoch
        # The per-epoch lines, followable while training runs; rewritten on resume to match the state.
        self.progress_path = self.state_path.parent / "history.jsonl"
        # Called after every step as on_step(phase, epoch, step, steps) and after every epoch as on_epoch(record)
        # (the run's lock refreshes itself, TensorBoard writes its curves).
        self.on_step: Callable[[str, int, int, int], None] | None = None
        self.on_epoch: Callable[[dict], None] | None = None

    def stop_reason(self) -> dict | None:
        config = self.config
        return stop_reason(self.history, config.epochs, config.patience, config.min_epochs)

    def resume(self, restart_finished: bool) -> None:
        """Load the saved state (unless there is none, or a finished one is to be trained again), else seed."""
        config, path = self.config, self.state_path
        state = load_torch_file(path, "training state", f"delete {path.parent} to train this run again from scratch "
                                "(its saved progress is lost)") if path.is_file() else None
        if state is not None and state.get("format") != STATE_FORMAT:
            raise ValueError(f"{path} is not an hmfs training state (format {state.get('format')!r})")
        finished = state is not None and stop_reason(state["history"], config.epochs, config.patience, config.min_epochs)
        if restart_finished and finished:
            log.info("the state at %s is finished (%s); training again from scratch", path, finished["detail"])
            state = None
        if state is not None:
            check_resumable(state["config"], config)
            load_hsnet_checkpoint(self.model, state["learner"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scaler is not None and state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            torch.set_rng_state(state["rng"]["torch"])
            if self.device.type == "cuda" and state["rng"].get("cuda") is not None:
                torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
            self.start_step = state["step"]
            self.history, self.best = state["history"], state["best"]
            # A saved partial epoch holds the running train sums of all ranks: rank 0 carries them on.
            self.partial = state["partial_epoch"] if self.ranks.main else (
                state["partial_epoch"] and {**state["partial_epoch"], "train_meter": None})
            log.info("resuming %s from epoch %d of %d, step %d (state %s)", Path(config.out_dir),
                     state["epoch"], config.epochs, self.start_step, path)
        else:
            seed_everything(config.seed)
            log.info("training %s from scratch: at most %d epochs%s, %d training / %d validation episodes",
                     Path(config.out_dir), config.epochs,
                     f" (patience {config.patience} after {config.min_epochs})" if config.patience else "",
                     self.episodes_per_epoch, len(self.val_set))
        self.this_attempt.start = [len(self.history), self.start_step]
        if self.ranks.main:
            atomic_write_text(self.progress_path, "".join(json_line(h) for h in self.history))
        self.train_forward = train_forward(self.model, self.train_cache, self.ranks, self.device)

    def save_state(self, epochs_done: int, step: int, partial_epoch: dict | None) -> None:
        """The resumable state (rank 0 writes it): after `epochs_done` whole epochs and `step` batches of the next."""
        if not self.ranks.main:
            self.this_attempt.saved = [epochs_done, step]
            return
        device = self.device
        atomic_torch_save(self.state_path, {
            "format": STATE_FORMAT,
            "epoch": epochs_done,
            "step": step,
            "partial_epoch": partial_epoch,  # the interrupted epoch's running train metrics and time
            "learner": learner_weights(self.model),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None},
            "history": self.history,
            "best": self.best,
            "ranks": self.ranks.world,
            "config": dataclasses.asdict(self.config),
            "git_commit": self.commit,
        })
        self.this_attempt.saved = [epochs_done, step]  # only once the state is on disk

    def stop_here(self, epoch: int, step: int, partial_epoch: dict | None) -> None:
        """Act on a stop signal at a step boundary: save the state (`step` batches of `epoch` done) and stop."""
        stop, this_attempt = self.stop, self.this_attempt
        if [epoch, step] != this_attempt.start:
            self.save_state(epoch, step, partial_epoch)
        if stop.progress_at_signal == 0:
            this_attempt.write("no_progress", stop.signal_name)
            raise TrainingStalled(
                f"{stop.signal_name} arrived before this attempt finished a single training step or validation "
                f"pass (it started at epoch {this_attempt.start[0]}, step {this_attempt.start[1]}; saved at epoch {epoch}, "
                f"step {step}). Under SLURM the job's time limit leaves too little time before the signal for "
                "start-up and one step: raise resources.train.runtime or lower resources.train.save_before_limit")
        this_attempt.write("stopped", stop.signal_name)
        raise TrainingStopped(stop.signal_name, epoch, step)

    def _partial_epoch(self, meter: IoUAccumulator, began: float) -> dict:
        """What a state saved inside an epoch keeps of it: the running train sums (of all ranks) and the time spent."""
        return {"train_meter": summed_state(meter, self.ranks), "seconds": time.perf_counter() - began}

    def _after_train_step(self, step: int, epoch: int, steps: int, meter: IoUAccumulator, began: float) -> None:
        self.stop.progress += 1
        if self.config.checkpoint_every and step % self.config.checkpoint_every == 0:
            self.save_state(epoch, step, self._partial_epoch(meter, began))
        if self.on_step is not None:  # after the save: what it reports as saved is on disk
            self.on_step("train", epoch, step, steps)
        if self.stop.agreed(self.ranks):
            self.stop_here(epoch, step, self._partial_epoch(meter, began))

    def _after_val_step(self, step: int, epoch: int, train_steps: int, meter: IoUAccumulator, began: float) -> None:
        if self.on_step is not None:
            self.on_step("val", epoch, step, len(self.val_loader))
        if self.stop.signal_name and not self.ranks.distributed:  # one process: the validation pass is re-run whole on resume
            self.stop_here(epoch, train_steps, self._partial_epoch(meter, began))

    def _val_loader(self) -> DataLoader:
        """This rank's validation episodes in batches (a shard of them, whose sums are added over the ranks)."""
        if self.val_loader is None:
            config = self.config
            mine = shard(range(len(self.val_set)), self.ranks)
            batches = [mine[i:i + config.batch_size] for i in range(0, len(mine), config.batch_size)]
            self.val_loader = make_loader(self.val_set, batches, config.num_workers, self.device, persistent=True)
        return self.val_loader

    def train_epoch(self, epoch: int) -> None:
        """Train one epoch (the rest of it, when resumed inside it), validate, record, save the state."""
        config, partial, ranks = self.config, self.partial, self.ranks
        began = time.perf_counter() - (partial["seconds"] if partial else 0.0)
        self.train_set.set_epoch(epoch)
        order = epoch_order(len(self.train_set), config.seed, epoch, config.train_episodes)
        shares = split_batches(order, config.batch_size, ranks)
        train_meter = IoUAccumulator(self.train_set.class_ids, self.train_set.nclass)
        if partial and partial["train_meter"] is not None:
            train_meter.load_state_dict(partial["train_meter"])
        remaining = shares[self.start_step:]  # a resumed epoch skips its finished batches
        try:
            run_epoch(self.model, make_loader(self.train_set, [s.indices for s in remaining], config.num_workers,
                                              self.device), train_meter, self.device, self.optimizer, config.precision,
                      config.log_every, label=f"epoch {epoch} train", first_step=self.start_step,
                      forward=self.train_forward, shares=remaining, scaler=self.scaler,
                      on_step=functools.partial(self._after_train_step, epoch=epoch, steps=len(shares), meter=train_meter,
                                                began=began))
        except NonFiniteStep as error:
            raise TrainingDiverged(
                f"training diverged at epoch {epoch}, {error} (lr {config.lr:g}, precision {config.precision}); the step "
                f"was not taken and nothing non-finite is saved: lower the learning rate (train.<benchmark>.lr, --lr) "
                f"or use fp32, and delete {self.state_path.parent} to train again from scratch") from None
        self.start_step, self.partial = 0, None
        reduce_accumulator(train_meter, ranks)
        val_meter = IoUAccumulator(self.val_set.class_ids, self.val_set.nclass)
        run_epoch(self.model, self._val_loader(), val_meter, self.device, None, config.precision, config.log_every,
                  label=f"epoch {epoch} val", feature_cache=self.val_cache,
                  on_step=functools.partial(self._after_val_step, epoch=epoch, train_steps=len(shares), meter=train_meter,
                                            began=began))
        reduce_accumulator(val_meter, ranks)
        record = {
            "epoch": epoch,
            "train_loss": train_meter.mean_loss(), "train_miou": train_meter.miou(), "train_fb_iou": train_meter.fb_iou(),
            "val_loss": val_meter.mean_loss(), "val_miou": val_meter.miou(), "val_fb_iou": val_meter.fb_iou(),
            "seconds": time.perf_counter() - began,
        }
        if record["val_miou"] > self.best["val_miou"]:  # strict, as HSNet: the earliest best epoch wins
            self.best = {"epoch": epoch, "val_miou": record["val_miou"], "learner": learner_weights(self.model)}
        record["best_epoch"] = self.best["epoch"]
        self.history.append(record)
        self.save_state(epoch + 1, 0, None)
        self.stop.progress += 1
        if ranks.main:
            with open(self.progress_path, "a") as handle:
                handle.write(json_line(record))
        log.info("epoch %d/%d: %s", epoch + 1, config.epochs, json.dumps(record))
        if self.on_epoch is not None:
            self.on_epoch(record)
        if self.stop.agreed(self.ranks) and self.stop_reason() is None:
            self.stop_here(epoch + 1, 0, None)

    def finish(self, stopped: dict) -> dict:
        """Write the run's outputs (best.pt, last.pt, history, config, summary; rank 0) and record the attempt.

        `stopped`: the stopping rule that ended the run (hmfs.training.stopping.stop_reason), kept in the summary.
        """
        config, history, best, out_dir = self.config, self.history, self.best, Path(self.config.out_dir)
        if self.val_cache is not None:
            log.info("feature cache: %s", self.val_cache.summary())
        last_epoch = history[-1]["epoch"] if history else None
        last_miou = history[-1]["val_miou"] if history else None
        summary = {
            "best_epoch": best["epoch"], "best_val_miou": best["val_miou"],
            "last_epoch": last_epoch, "last_val_miou": last_miou,
            "epochs": len(history), "stopped": stopped, "seconds": sum(h["seconds"] for h in history),
            "train_episodes_per_epoch": self.episodes_per_epoch,
            "ranks": self.ranks.world, "environment": environment(), "config": dataclasses.asdict(config),
        }
        if self.ranks.main:
            atomic_torch_save(out_dir / "last.pt",
                              checkpoint(config, learner_weights(self.model), last_epoch, last_miou, self.commit,
                                         self.backbone_sha))
            best_learner = best["learner"] if best["learner"] is not None else learner_weights(self.model)
            atomic_torch_save(out_dir / "best.pt",
                              checkpoint(config, best_learner, best["epoch"], best["val_miou"], self.commit,
                                         self.backbone_sha))
            atomic_write_text(out_dir / "history.jsonl", "".join(json_line(h) for h in history))
            atomic_write_json(out_dir / "config.json", dataclasses.asdict(config))
            atomic_write_json(out_dir / "train_summary.json", summary)
        self.this_attempt.write("finished", self.stop.signal_name)
        log.info("done: best epoch %s (val mIoU %.2f), last epoch %s; stopped: %s", best["epoch"], best["val_miou"],
                 last_epoch, stopped["detail"])
        return summary
