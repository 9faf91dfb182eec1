"""The synthetic stand-in for ImageNet: a small ResNet trained to classify looks no generated benchmark uses."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hmfs.data.transforms import IMAGENET_MEAN
from hmfs.model.backbone import BACKBONES
from hmfs.synthetic.backgrounds import BACKGROUNDS, backdrop_photos
from hmfs.synthetic.scenes import COLOURS, SHAPES, TEXTURES, Appearance, ObjectSpec, distractors, render_scene

log = logging.getLogger(__name__)

# Streams of the pretraining data, kept apart from the benchmarks' (1, 2, 3 in hmfs.synthetic.layout).
_CLASSES, _TRAIN, _VAL = 11, 12, 13
SUMMARY_CLASS_KEYS = ("classes", "appearance")  # where <benchmark>_summary.json lists its class looks


@dataclass
class PretrainConfig:
    """Everything a pretraining run depends on; written into its summary JSON."""

    backbone: str
    out: str
    exclude_summaries: tuple[str, ...] = ()
    num_classes: int = 64
    images_per_class: int = 40
    val_images_per_class: int = 10
    image_size: int = 96
    epochs: int = 6
    batch_size: int = 64
    lr: float = 0.05
    seed: int = 0
    background: str = "clutter"  # as the benchmarks': clutter, or photos (crops of scikit-image's photos)
    masked_share: float = 0.0  # share of images shown as input masking shows a support: all but the object in the mean colour

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; accepted: {', '.join(BACKBONES)}")
        for name in ("num_classes", "images_per_class", "val_images_per_class", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if self.image_size < 32:
            raise ValueError(f"image_size {self.image_size} is too small; use >= 32")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"unknown background {self.background!r}; accepted: {', '.join(BACKGROUNDS)}")
        if not 0.0 <= self.masked_share <= 1.0:
            raise ValueError(f"masked_share must be within [0, 1], got {self.masked_share}")


def benchmark_looks(summaries: list[Path]) -> set[str]:
    """The class looks ("red stripes disc") of the generated benchmarks whose summaries are given."""
    looks: set[str] = set()
    for path in summaries:
        if not Path(path).is_file():
            raise FileNotFoundError(f"benchmark summary not found: {path} (written by `python -m hmfs generate`)")
        summary = json.loads(Path(path).read_text())
        found = [summary[key] for key in SUMMARY_CLASS_KEYS if isinstance(summary.get(key), dict)]
        if not found:
            raise ValueError(f"{path} lists no class looks (expected one of the keys {SUMMARY_CLASS_KEYS})")
        for table in found:
            looks.update(table.values())
    return looks


def pretraining_classes(excluded: set[str], num_classes: int, seed: int) -> list[Appearance]:
    """`num_classes` looks drawn from every shape x colour x texture that is not in `excluded`."""
    free = [Appearance(s, rgb, t) for s in SHAPES for rgb in COLOURS.values() for t in TEXTURES]
    free = [look for look in free if look.describe() not in excluded]
    if num_classes > len(free):
        raise ValueError(f"{num_classes} pretraining classes asked for, but only {len(free)} looks are "
                         "unused by the benchmarks; lower --num-classes")
    picked = np.random.default_rng([seed, _CLASSES]).choice(len(free), size=num_classes, replace=False)
    return [free[i] for i in sorted(picked)]


def render_classification_set(classes: list[Appearance], per_class: int, size: int, seed: int, stream: int,
                              photos=(), masked_share: float = 0.0):
    """Images (N, 3, size, size) uint8 and labels (N,) int64: one object of the class on a background
    (clutter or a crop of `photos`), plus unlabelled distractor blobs, so the net must find the object,
    not the scene. A `masked_share` of the images show only the object, everything else in the
    ImageNet mean colour: what input masking feeds the backbone, so its features of such inputs are
    learned, as an ImageNet backbone's are of flat regions."""
    mean = np.round(np.asarray(IMAGENET_MEAN) * 255).astype(np.uint8)  # normalised 0, input masking's fill
    images, labels = [], []
    for label, look in enumerate(classes):
        for index in range(per_class):
            rng = np.random.default_rng([seed, stream, label, index])
            image, instances, owner = render_scene(rng, size, size, [ObjectSpec(look, 0)] + distractors(rng), photos)
            if masked_share and rng.random() < masked_share:
                shown = np.isin(owner, [i for i, instance in enumerate(instances) if instance.label == 0])
                image = np.where(shown[..., None], image, mean)
            images.append(image.transpose(2, 0, 1))
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def pretrain(config: PretrainConfig) -> dict:
    """Train `config.backbone` (torchvision layout) as a classifier; save its state dict to `config.out`
    (the `fc` head is dropped when HSNet loads it) and a summary beside it; returns the summary."""
    import torch
    import torchvision

    from hmfs.data.transforms import IMAGENET_STD
    from hmfs.runtime import atomic_torch_save, atomic_write_json, environment, git_commit, seed_everything

    began = time.perf_counter()
    excluded = benchmark_looks([Path(p) for p in config.exclude_summaries])
    classes = pretraining_classes(excluded, config.num_classes, config.seed)
    photos = backdrop_photos(config.background)
    train_x, train_y = render_classification_set(classes, config.images_per_class, config.image_size, config.seed, _TRAIN,
                                                 photos, config.masked_share)
    val_x, val_y = render_classification_set(classes, config.val_images_per_class, config.image_size, config.seed, _VAL,
                                             photos, config.masked_share)
    log.info("pretraining %s on %d synthetic classes (none of the %d benchmark looks): %d train / %d val images, %.1f s",
             config.backbone, len(classes), len(excluded), len(train_y), len(val_y), time.perf_counter() - began)

    seed_everything(config.seed)
    # channels_last: oneDNN's preferred layout, about 1.3x faster per training step on the CPU (measured
    # with ResNet-18 at 96 px, batch 64, 2 threads: 1.06 s against 1.36 s); the saved weights are the same kind.
    model = getattr(torchvision.models, config.backbone)(num_classes=config.num_classes).to(memory_format=torch.channels_last)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def batch(x: np.ndarray) -> torch.Tensor:  # (B, 3, H, W) uint8 -> normalised float, as HSNet's input
        return ((torch.from_numpy(x).float() / 255.0 - mean) / std).contiguous(memory_format=torch.channels_last)

    steps_per_epoch = -(-len(train_y) // config.batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, weight_decay=1e-4, nesterov=True)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(config.seed)
    history = []
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(train_y), generator=generator).numpy()
        losses, correct = [], 0
        for start in range(0, len(order), config.batch_size):
            index = order[start:start + config.batch_size]
            x, y = batch(train_x[index]), torch.from_numpy(train_y[index])
            flip = torch.rand(len(index), generator=generator) < 0.5  # horizontal flips
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
            logits = model(x)  # (B, num_classes)
            loss = torch.nn.functional.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            correct += int((logits.argmax(1) == y).sum())
        val_accuracy = accuracy(model, batch, val_x, val_y, config.batch_size)
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "train_accuracy": correct / len(train_y),
                        "val_accuracy": val_accuracy, "seconds": time.perf_counter() - began})
        log.info("pretrain epoch %d/%d: %s", epoch + 1, config.epochs, json.dumps(history[-1]))

    out = Path(config.out)
    atomic_torch_save(out, {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
    summary = {
        "backbone": config.backbone, "weights": str(out), "classes": [look.describe() for look in classes],
        "excluded_benchmark_looks": len(excluded), "val_accuracy": history[-1]["val_accuracy"],
        "chance_accuracy": 1.0 / config.num_classes, "history": history,
        "seconds": time.perf_counter() - began, "config": asdict(config), "git_commit": git_commit(),
        "environment": environment(),
    }
    atomic_write_json(summary_path(out), summary)
    log.info("saved %s: val accuracy %.3f (chance %.3f) after %.0f s", out, summary["val_accuracy"],
             summary["chance_accuracy"], summary["seconds"])
    return summary


def accuracy(model, batch, x: np.ndarray, y: np.ndarray, batch_size: int) -> float:
    """Top-1 accuracy of `model` in eval mode (BatchNorm running statistics, as HSNet uses it)."""
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            logits = model(batch(x[start:start + batch_size]))
            correct += int((logits.argmax(1) == torch.from_numpy(y[start:start + batch_size])).sum())
    return correct / len(y)


def summary_path(weights: Path) -> Path:
    """The JSON written beside a pretrained weights file."""
    return Path(weights).with_suffix(".json")
