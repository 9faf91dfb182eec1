"""The parts of a training run: its episode order, batches, model, trainable weights and checkpoint format."""

from __future__ import annotations

import dataclasses
import json
import math

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from hmfs.engine import episode_logits
from hmfs.model import HSNet
from hmfs.model.feature_cache import FeatureCache
from hmfs.training.attempts import TrainingDiverged
from hmfs.training.config import TrainConfig
from hmfs.training.distributed import Ranks

CHECKPOINT_FORMAT = "hmfs-checkpoint-v1"


def epoch_order(n: int, seed: int, epoch: int, limit: int | None) -> list[int]:
    """The episode indices of one training epoch: a permutation seeded by (seed, epoch)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=generator).tolist()
    return order[:limit] if limit else order


def make_loader(dataset, batches: list[list[int]], num_workers: int, device: torch.device,
                persistent: bool = False) -> DataLoader:
    """`dataset`'s episodes in `batches` (lists of indices). On a GPU the batches come in pinned memory,
    so that the non-blocking copy to the device overlaps the previous step; workers keep 4 batches ready."""
    extra = {"prefetch_factor": 4, "persistent_workers": persistent} if num_workers else {}
    return DataLoader(dataset, batch_sampler=batches, num_workers=num_workers, pin_memory=device.type == "cuda",
                      **extra)


class EpisodeForward(nn.Module):
    """A training step's forward (batch -> 1-shot logits (B, 2, H, W)) as one module, for DistributedDataParallel."""

    def __init__(self, model: HSNet, feature_cache: FeatureCache | None):
        super().__init__()
        self.model, self.feature_cache = model, feature_cache

    def forward(self, batch: dict) -> torch.Tensor:
        if self.feature_cache is not None:
            return self.feature_cache.forward(batch)
        return episode_logits(self.model, batch)


def learner_weights(model: HSNet) -> dict[str, torch.Tensor]:
    """A CPU copy of the trainable weights (the frozen backbone is not saved); TrainingDiverged if any is not finite."""
    weights = {k: v.detach().cpu().clone() for k, v in model.hpn_learner.state_dict().items()}
    bad = [k for k, v in weights.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise TrainingDiverged(f"the learner's weights are not finite ({', '.join(bad[:3])}); they are not saved")
    return weights


def json_line(record: dict) -> str:
    """One history line as strict JSON: a non-finite number (a loss of an empty pass) is written as null."""
    clean = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}
    return json.dumps(clean, allow_nan=False) + "\n"


def build_model(config: TrainConfig, device: torch.device) -> HSNet:
    torch.manual_seed(config.seed)  # the learner's initial weights
    model = HSNet(config.backbone, config.masking, config.backbone_weights, random_backbone=config.random_backbone)
    return model.to(device)


def checkpoint(config: TrainConfig, learner: dict[str, torch.Tensor], epoch: int | None, val_miou: float | None,
               commit: str | None, backbone_sha: str | None) -> dict:
    """best.pt / last.pt: the learner's weights and what made them, with the frozen backbone's identity
    (`backbone_sha`: the sha256 of its weights file; None for a random backbone), which `evaluate` checks."""
    return {"format": CHECKPOINT_FORMAT, "learner": learner, "backbone": config.backbone, "masking": config.masking,
            "epoch": epoch, "val_miou": val_miou, "config": dataclasses.asdict(config), "git_commit": commit,
            "backbone_weights_sha256": backbone_sha}


def train_forward(model: HSNet, feature_cache: FeatureCache | None, ranks: Ranks, device: torch.device) -> nn.Module:
    """The training forward; across ranks wrapped in DistributedDataParallel (built after resume: it syncs the ranks'
    weights from rank 0), which averages the learner's gradients over the ranks in buckets during backward."""
    forward = EpisodeForward(model, feature_cache)
    if not ranks.distributed:
        return forward
    return DistributedDataParallel(forward, device_ids=[device.index] if device.type == "cuda" else None,
                                   broadcast_buffers=False)  # the frozen backbone's buffers never change
