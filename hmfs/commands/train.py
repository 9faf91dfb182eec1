"""`python -m hmfs train`: HSNet's training recipe, seeded, resumable, with best/last checkpoints."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from hmfs.training.attempts import (
    EXIT_STOPPED, NO_PROGRESS_LIMIT, AttemptRecord, StopRequest, TrainingStalled, TrainingStopped, check_progressing,
    read_attempts,
)
from hmfs.cli import add_common_model_args, resolve_splits_dir
from hmfs.data import BENCHMARKS, build_dataset
from hmfs.data.transforms import AUGMENT_OPS
from hmfs.engine import learner_optimizer, run_epoch
from hmfs.metrics import IoUAccumulator
from hmfs.model import BACKBONES, MASKINGS, HSNet, load_hsnet_checkpoint
from hmfs.model.feature_cache import FeatureCache
from hmfs.runtime import (
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    environment,
    git_commit,
    resolve_device,
    seed_everything,
)

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "hmfs-checkpoint-v1"
STATE_FORMAT = "hmfs-train-state-v1"
# Config keys that may change between a killed run and its resumption without changing results.
RESUMABLE_CHANGES = {"epochs", "num_workers", "out_dir", "state_dir", "log_every", "checkpoint_every", "device"}


@dataclass
class TrainConfig:
    """Everything a training run depends on; written beside its outputs as config.json."""

    benchmark: str
    data_root: str
    splits_dir: str
    fold: int
    backbone: str
    masking: str
    out_dir: str
    backbone_weights: str | None = None
    random_backbone: bool = False
    state_dir: str | None = None  # default: "<out_dir>.state", outside the final outputs
    img_size: int = 400
    batch_size: int = 20
    lr: float = 1e-3
    epochs: int = 2000
    seed: int = 0  # training episodes and order; HSNet leaves it unrecorded
    val_seed: int = 0  # HSNet validates on the test fold's episodes drawn with seed 0
    val_episodes: int | None = None  # None: the split's own length (PASCAL/COCO 1000, FSS every val image)
    train_episodes: int | None = None  # cap on episodes per epoch (None: the whole split, as HSNet)
    augment: bool = False
    augment_ops: list[str] | None = None  # None: the whole recipe (hmfs.data.transforms.AUGMENT_OPS)
    num_workers: int = 0
    device: str = "cpu"
    bf16: bool = False
    log_every: int = 50
    checkpoint_every: int = 0  # also save the resumable state every N training steps (0: at epoch ends only)
    cache_features: bool = False  # keep the frozen backbone's maps of un-augmented images (hmfs.model.feature_cache)

    def __post_init__(self) -> None:
        if self.benchmark not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {self.benchmark!r}; accepted: {', '.join(BENCHMARKS)}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; accepted: {', '.join(BACKBONES)}")
        if self.masking not in MASKINGS:
            raise ValueError(f"unknown masking {self.masking!r}; accepted: {', '.join(MASKINGS)}")
        if self.backbone_weights is None and not self.random_backbone:
            raise ValueError("no backbone weights: pass --backbone-weights FILE, or --random-backbone to train on random frozen features")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if self.val_episodes is not None and self.val_episodes < 1:
            raise ValueError(f"val_episodes must be >= 1 or None, got {self.val_episodes}")
        for name in ("img_size", "batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.train_episodes is not None and self.train_episodes < 1:
            raise ValueError(f"train_episodes must be >= 1 or None, got {self.train_episodes}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    @property
    def state_path(self) -> Path:
        state_dir = Path(self.state_dir) if self.state_dir else Path(str(Path(self.out_dir)) + ".state")
        return state_dir / "state.pt"


def epoch_order(n: int, seed: int, epoch: int, limit: int | None) -> list[int]:
    """The episode indices of one training epoch: a permutation seeded by (seed, epoch)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=generator).tolist()
    return order[:limit] if limit else order


def make_loader(dataset, indices: list[int] | None, batch_size: int, num_workers: int) -> DataLoader:
    """Batches of `dataset` in the order of `indices` (all, in order, when None)."""
    return DataLoader(dataset, batch_size=batch_size, sampler=indices, shuffle=False, num_workers=num_workers)


def learner_weights(model: HSNet) -> dict[str, torch.Tensor]:
    """A CPU copy of the trainable weights (the frozen backbone is not saved)."""
    return {k: v.detach().cpu().clone() for k, v in model.hpn_learner.state_dict().items()}


def build_model(config: TrainConfig, device: torch.device) -> HSNet:
    torch.manual_seed(config.seed)  # the learner's initial weights
    model = HSNet(config.backbone, config.masking, config.backbone_weights, random_backbone=config.random_backbone)
    return model.to(device)


def _checkpoint(model: HSNet, config: TrainConfig, epoch: int, val_miou: float, commit: str | None,
                learner_state=None) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "learner": learner_state if learner_state is not None else learner_weights(model),
        "backbone": config.backbone,
        "masking": config.masking,
        "epoch": epoch,
        "val_miou": val_miou,
        "config": dataclasses.asdict(config),
        "git_commit": commit,
    }


def _check_resumable(saved: dict, config: TrainConfig) -> None:
    current = dataclasses.asdict(config)
    # A key newer than the saved state counts as its default (the behaviour the state was made with).
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    changed = sorted(k for k in current if k not in RESUMABLE_CHANGES and saved.get(k, defaults[k]) != current[k])
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
        raise ValueError(
            f"the training state at {config.state_path} was made with another config ({details}); "
            "use the same flags to resume, or delete that state folder (or pass another --state-dir) to start over"
        )


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def _attempt_log(path: Path):
    """Also write this process's log to `path`, appended: the log of every attempt of a run, in order."""
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def train(config: TrainConfig, restart_finished: bool = False, attempt: int = 1) -> dict:
    """Train (or resume) one run; returns the summary that is also written to `train_summary.json`.

    Outputs in `out_dir` (written once, atomically, at the end): best.pt (best validation mIoU, as
    HSNet selects), last.pt, history.jsonl (one line per epoch), config.json, train_summary.json.
    The resumable state (learner, optimizer, RNG, history, best weights) is saved after every epoch
    in the state folder; running the same command again resumes from it. A state that already holds
    every epoch is re-used as it is (nothing is trained), unless `restart_finished`: then the run
    trains again from scratch.

    A stop signal (STOP_SIGNALS: SLURM's warning ahead of the time limit, preemption, requeue) makes
    the run save its state after the current training step (or abandon the current validation pass)
    and raise TrainingStopped; the next run resumes bit for bit. The state folder also keeps the log
    of every attempt (train.log, appended) and one record per attempt (attempts.jsonl); an attempt
    that stops before finishing a single step raises TrainingStalled, and so does a retry (`attempt`
    > 1, Snakemake's attempt number) after NO_PROGRESS_LIMIT such attempts (see `check_progressing`).
    """
    state_dir = config.state_path.parent
    state_dir.mkdir(parents=True, exist_ok=True)
    this_attempt = AttemptRecord(state_dir / "attempts.jsonl", attempt)
    with _attempt_log(state_dir / "train.log"), StopRequest().installed() as stop:
        try:
            return _train(config, restart_finished, stop, this_attempt)
        except (TrainingStopped, TrainingStalled):
            raise  # recorded where they are raised (a refused attempt is not recorded)
        except Exception as error:
            this_attempt.write("failed", stop.signal_name, error=f"{type(error).__name__}: {error}")
            raise


def _train(config: TrainConfig, restart_finished: bool, stop: StopRequest, this_attempt: AttemptRecord) -> dict:
    out_dir = Path(config.out_dir)
    state_path = config.state_path
    attempts = read_attempts(this_attempt.path)
    log.info("==== attempt %d of %s: %s ====", len(attempts) + 1, out_dir,
             ", ".join(f"{k}={v}" for k, v in this_attempt.where.items() if v is not None))
    check_progressing(attempts, this_attempt.where["snakemake_attempt"], state_path)

    device = resolve_device(config.device)
    common = dict(
        benchmark=config.benchmark, data_root=Path(config.data_root), splits_dir=Path(config.splits_dir),
        fold=config.fold, shot=1, img_size=config.img_size,
    )
    train_set = build_dataset(split="trn", seed=config.seed, augment=config.augment, augment_ops=config.augment_ops,
                              **common)
    val_set = build_dataset(split="val", seed=config.val_seed, num_episodes=config.val_episodes, **common)
    model = build_model(config, device)
    optimizer = learner_optimizer(model, config.lr)

    commit = git_commit()  # once per run: states may be saved every step
    start_epoch, start_step, history, partial = 0, 0, [], None
    best = {"epoch": None, "val_miou": float("-inf"), "learner": None}
    state = torch.load(state_path, map_location="cpu", weights_only=True) if state_path.is_file() else None
    if state is not None and state.get("format") != STATE_FORMAT:
        raise ValueError(f"{state_path} is not an hmfs training state (format {state.get('format')!r})")
    if state is not None and restart_finished and state["epoch"] >= config.epochs:
        log.info("the state at %s is finished (%d epochs); training again from scratch", state_path, state["epoch"])
        state = None
    if state is not None:
        _check_resumable(state["config"], config)
        load_hsnet_checkpoint(model, state["learner"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], device)
        start_epoch, start_step, history, best = state["epoch"], state["step"], state["history"], state["best"]
        partial = state["partial_epoch"]
        log.info("resuming %s from epoch %d of %d, step %d (state %s)", out_dir, start_epoch, config.epochs,
                 start_step, state_path)
    else:
        seed_everything(config.seed)
        log.info("training %s from scratch: %d epochs, %d training / %d validation episodes",
                 out_dir, config.epochs, len(train_set), len(val_set))
    this_attempt.start = [start_epoch, start_step]
    # The per-epoch lines, followable while training runs; rewritten on resume to match the state.
    progress_path = state_path.parent / "history.jsonl"
    atomic_write_text(progress_path, "".join(json.dumps(h) + "\n" for h in history))

    def save_state(epochs_done: int, step: int, partial_epoch: dict | None) -> None:
        """The resumable state: after `epochs_done` whole epochs and `step` batches of the next."""
        this_attempt.saved = [epochs_done, step]
        atomic_torch_save(state_path, {
            "format": STATE_FORMAT,
            "epoch": epochs_done,
            "step": step,
            "partial_epoch": partial_epoch,  # the interrupted epoch's running train metrics and time
            "learner": learner_weights(model),
            "optimizer": optimizer.state_dict(),
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None},
            "history": history,
            "best": best,
            "config": dataclasses.asdict(config),
            "git_commit": commit,
        })

    def stop_here(epoch: int, step: int, partial_epoch: dict | None) -> None:
        """Act on a stop signal at a step boundary: save the state (`step` batches of `epoch` done) and stop."""
        if [epoch, step] != this_attempt.start:
            save_state(epoch, step, partial_epoch)
        if stop.progress_at_signal == 0:
            this_attempt.write("no_progress", stop.signal_name)
            raise TrainingStalled(
                f"{stop.signal_name} arrived before this attempt finished a single training step or validation "
                f"pass (it started at epoch {this_attempt.start[0]}, step {this_attempt.start[1]}; saved at epoch {epoch}, "
                f"step {step}). Under SLURM the job's time limit leaves too little time before the signal for "
                "start-up and one step: raise resources.train.runtime or lower resources.train.save_before_limit")
        this_attempt.write("stopped", stop.signal_name)
        raise TrainingStopped(stop.signal_name, epoch, step)

    # Validation images are never augmented; training ones only without --augment.
    val_cache = FeatureCache(model) if config.cache_features else None
    train_cache = val_cache if config.cache_features and not config.augment else None

    for epoch in range(start_epoch, config.epochs):
        began = time.perf_counter() - (partial["seconds"] if partial else 0.0)
        train_set.set_epoch(epoch)
        order = epoch_order(len(train_set), config.seed, epoch, config.train_episodes)
        train_steps = math.ceil(len(order) / config.batch_size)
        train_meter = IoUAccumulator(train_set.class_ids, train_set.nclass)
        if partial:
            train_meter.load_state_dict(partial["train_meter"])

        def partial_epoch(meter: IoUAccumulator = train_meter, began: float = began) -> dict:
            return {"train_meter": meter.state_dict(), "seconds": time.perf_counter() - began}

        def after_train_step(step: int, epoch: int = epoch, partial_epoch=partial_epoch) -> None:
            stop.progress += 1
            if config.checkpoint_every and step % config.checkpoint_every == 0:
                save_state(epoch, step, partial_epoch())
            if stop.signal_name:
                stop_here(epoch, step, partial_epoch())

        def after_val_step(_: int, epoch: int = epoch, steps: int = train_steps, partial_epoch=partial_epoch) -> None:
            if stop.signal_name:  # the validation pass is re-run whole on resume
                stop_here(epoch, steps, partial_epoch())

        remaining = order[start_step * config.batch_size:]  # a resumed epoch skips its finished batches
        run_epoch(model, make_loader(train_set, remaining, config.batch_size, config.num_workers), train_meter,
                  device, optimizer, config.bf16, config.log_every, label=f"epoch {epoch} train",
                  first_step=start_step, on_step=after_train_step, feature_cache=train_cache)
        start_step, partial = 0, None
        val_meter = IoUAccumulator(val_set.class_ids, val_set.nclass)
        run_epoch(model, make_loader(val_set, None, config.batch_size, config.num_workers), val_meter,
                  device, None, config.bf16, config.log_every, label=f"epoch {epoch} val", on_step=after_val_step,
                  feature_cache=val_cache)
        record = {
            "epoch": epoch,
            "train_loss": train_meter.mean_loss(), "train_miou": train_meter.miou(), "train_fb_iou": train_meter.fb_iou(),
            "val_loss": val_meter.mean_loss(), "val_miou": val_meter.miou(), "val_fb_iou": val_meter.fb_iou(),
            "seconds": time.perf_counter() - began,
        }
        if record["val_miou"] > best["val_miou"]:  # strict, as HSNet: the earliest best epoch wins
            best = {"epoch": epoch, "val_miou": record["val_miou"],
                    "learner": learner_weights(model)}
        record["best_epoch"] = best["epoch"]
        history.append(record)
        save_state(epoch + 1, 0, None)
        stop.progress += 1
        with open(progress_path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        log.info("epoch %d/%d: %s", epoch + 1, config.epochs, json.dumps(record))
        if stop.signal_name and epoch + 1 < config.epochs:
            stop_here(epoch + 1, 0, None)

    if val_cache is not None:
        log.info("feature cache: %s", val_cache.summary())
    last_epoch = history[-1]["epoch"] if history else None
    last_miou = history[-1]["val_miou"] if history else None
    atomic_torch_save(out_dir / "last.pt", _checkpoint(model, config, last_epoch, last_miou, commit))
    atomic_torch_save(out_dir / "best.pt", _checkpoint(model, config, best["epoch"], best["val_miou"], commit, best["learner"]))
    atomic_write_text(out_dir / "history.jsonl", "".join(json.dumps(h) + "\n" for h in history))
    atomic_write_json(out_dir / "config.json", dataclasses.asdict(config))
    summary = {
        "best_epoch": best["epoch"], "best_val_miou": best["val_miou"],
        "last_epoch": last_epoch, "last_val_miou": last_miou,
        "epochs": len(history), "seconds": sum(h["seconds"] for h in history),
        "train_episodes_per_epoch": min(len(train_set), config.train_episodes or len(train_set)),
        "environment": environment(), "config": dataclasses.asdict(config),
    }
    atomic_write_json(out_dir / "train_summary.json", summary)
    this_attempt.write("finished", stop.signal_name)
    log.info("done: best epoch %s (val mIoU %.2f), last epoch %s", best["epoch"], best["val_miou"], last_epoch)
    return summary


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train the HPN learner (HSNet's recipe), resumable",
                                   description=train.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_model_args(parser)
    parser.add_argument("--out", required=True, type=Path, help="output folder (best.pt, last.pt, history.jsonl, ...)")
    parser.add_argument("--state-dir", type=Path, default=None, help="resumable state (default: <out>.state)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-seed", type=int, default=0)
    parser.add_argument("--val-episodes", type=int, default=None,
                        help="validation episodes per epoch (default: PASCAL/COCO 1000, FSS-1000 every val image)")
    parser.add_argument("--train-episodes", type=int, default=None, help="episodes per epoch (default: the whole split)")
    parser.add_argument("--augment", action="store_true", help="photometric augmentation (the paper's * rows)")
    parser.add_argument("--augment-ops", nargs="+", choices=AUGMENT_OPS, default=None, metavar="OP",
                        help="with --augment: only these of the recipe's ops (default all: "
                             + ", ".join(AUGMENT_OPS) + "); the synthetic stand-in leaves out those that change colour")
    parser.add_argument("--log-every", type=int, default=50, help="log running train metrics every N steps")
    parser.add_argument("--cache-features", action="store_true",
                        help="compute the frozen backbone's maps of each un-augmented image once and keep them (up to "
                             "2 GiB): validation always, training without --augment; for small data (the synthetic "
                             "benchmark), where it halves a step's time")
    parser.add_argument("--checkpoint-every", type=int, default=0,
                        help="also save the resumable state every N training steps (long epochs, preemptible jobs)")
    parser.add_argument("--attempt", type=int, default=1,
                        help="Snakemake's attempt number of this job (1: first submission); a retry refuses to start "
                             f"after {NO_PROGRESS_LIMIT} attempts in a row stopped before finishing a step")
    parser.add_argument("--restart-finished", action="store_true",
                        help="train from scratch when the saved state is already finished (default: re-use it); "
                             "an unfinished state is always resumed")
    parser.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    config = TrainConfig(
        benchmark=args.benchmark, data_root=str(args.data_root), splits_dir=str(resolve_splits_dir(args.splits_dir)),
        fold=args.fold, backbone=args.backbone, masking=args.masking, out_dir=str(args.out),
        backbone_weights=str(args.backbone_weights) if args.backbone_weights else None,
        random_backbone=args.random_backbone, state_dir=str(args.state_dir) if args.state_dir else None,
        img_size=args.img_size, batch_size=args.batch_size, lr=args.lr, epochs=args.epochs, seed=args.seed,
        val_seed=args.val_seed, val_episodes=args.val_episodes, train_episodes=args.train_episodes,
        augment=args.augment, augment_ops=args.augment_ops, num_workers=args.num_workers, device=args.device, bf16=args.bf16,
        log_every=args.log_every, checkpoint_every=args.checkpoint_every, cache_features=args.cache_features,
    )
    try:
        train(config, restart_finished=args.restart_finished, attempt=args.attempt)
    except TrainingStopped as stopped:
        log.warning("%s; the state in %s holds it: run the same command again to resume (exit code %d)",
                    stopped, config.state_path.parent, EXIT_STOPPED)
        return EXIT_STOPPED
    except TrainingStalled as stalled:
        log.error("%s", stalled)
        return 1
    return 0
