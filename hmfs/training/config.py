"""One training run's settings (`TrainConfig`, written beside its outputs) and which of them a resumed run may change."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from hmfs.names import BACKBONES, BENCHMARKS, MASKINGS, PRECISIONS
from hmfs.training.stopping import check_stopping

# Config keys that may change between a killed run and its resumption without changing results.
# The stopping rule may change too: it decides how far a run goes, not what its epochs computed.
RESUMABLE_CHANGES = {"epochs", "patience", "min_epochs", "num_workers", "out_dir", "state_dir", "log_every",
                     "checkpoint_every", "device", "tensorboard"}


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
    epochs: int = 2000  # the cap (HSNet's niter)
    patience: int | None = None  # stop after this many epochs without a better val mIoU (None: train to the cap)
    min_epochs: int = 0  # the patience rule stops no run before this many epochs
    seed: int = 0  # training episodes and order; HSNet leaves it unrecorded
    val_seed: int = 0  # HSNet validates on the test fold's episodes drawn with seed 0
    val_episodes: int | None = None  # None: the split's own length (PASCAL/COCO 1000, FSS every val image)
    train_episodes: int | None = None  # cap on episodes per epoch (None: the whole split, as HSNet)
    augment: bool = False
    augment_ops: list[str] | None = None  # None: the whole recipe (hmfs.data.transforms.AUGMENT_OPS)
    num_workers: int = 0
    device: str = "cpu"
    precision: str = "fp32"  # fp32 | bf16 | fp16 autocast (hmfs.engine.PRECISIONS)
    log_every: int = 50
    checkpoint_every: int = 0  # also save the resumable state every N training steps (0: at epoch ends only)
    cache_features: bool = False  # keep the frozen backbone's maps of un-augmented images (hmfs.model.feature_cache)
    tensorboard: bool = True  # TensorBoard event files in <out_dir>/tensorboard (hmfs.training.curves)

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
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; accepted: {', '.join(PRECISIONS)}")
        check_stopping(self.epochs, self.patience, self.min_epochs)
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    @property
    def state_path(self) -> Path:
        state_dir = Path(self.state_dir) if self.state_dir else Path(str(Path(self.out_dir)) + ".state")
        return state_dir / "state.pt"


def check_resumable(saved: dict, config: TrainConfig) -> None:
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
