"""A training's curves for TensorBoard: losses, mIoU and FB-IoU, learning rate, speed and attempt boundaries, per epoch."""

from __future__ import annotations

import logging
from pathlib import Path

from hmfs.training.config import TrainConfig
from hmfs.training.distributed import Ranks

log = logging.getLogger(__name__)

TENSORBOARD_DIR = "tensorboard"  # in the run's output folder: `tensorboard --logdir <output_dir>` shows every run


class Curves:
    """Writes one point per epoch and curve (step = epochs done); a no-op when TensorBoard is off or on ranks > 0.

    A point is written only after its epoch's state is saved, so a resumed run never repeats one; a
    run trained again from scratch purges the old points (SummaryWriter's `purge_step`).
    """

    def __init__(self, writer, config: TrainConfig, train_episodes: int):
        self.writer, self.config, self.train_episodes = writer, config, train_episodes

    @classmethod
    def open(cls, config: TrainConfig, ranks: Ranks, attempt: int, start: list[int] | None,
             train_episodes: int) -> Curves:
        if not config.tensorboard or not ranks.main:
            return cls(None, config, train_episodes)
        try:
            from torch.utils.tensorboard import SummaryWriter  # needs the `tensorboard` package (requirements.txt)
        except ImportError as error:  # curves are not worth a failed training
            log.warning("no TensorBoard curves (%s): install tensorboard (requirements.txt) or set train.tensorboard: "
                        "false (--no-tensorboard)", error)
            return cls(None, config, train_episodes)

        epochs_done = start[0] if start else 0
        folder = Path(config.out_dir) / TENSORBOARD_DIR
        # Points past the state this attempt starts from (a run trained again from scratch) are dropped.
        writer = SummaryWriter(str(folder), purge_step=epochs_done + 1)
        writer.add_scalar("run/attempt", attempt, epochs_done)  # a step in this curve marks where an attempt began
        writer.add_text("run/attempts", f"attempt {attempt} starts at epoch {epochs_done}, step {start[1] if start else 0}",
                        epochs_done)
        writer.flush()
        return cls(writer, config, train_episodes)

    def epoch(self, record: dict) -> None:
        """One epoch's record (hmfs.training.loop: train_/val_ loss, miou, fb_iou, seconds)."""
        if self.writer is None:
            return
        step = record["epoch"] + 1
        for split in ("train", "val"):
            for name in ("loss", "miou", "fb_iou"):
                self.writer.add_scalar(f"{split}/{name}", record[f"{split}_{name}"], step)
        self.writer.add_scalar("train/learning_rate", self.config.lr, step)
        self.writer.add_scalar("speed/epoch_seconds", record["seconds"], step)
        # Training episodes per second of the whole epoch (its validation pass included).
        self.writer.add_scalar("speed/episodes_per_second", self.train_episodes / max(record["seconds"], 1e-9), step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
