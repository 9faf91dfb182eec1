"""Loading learner weights: ours, and the reference HSNet / HM checkpoints (`module.`, `hpn_learner.*`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

import torch

from hmfs.files import load_torch_file
from hmfs.model.hsnet import HSNet


def learner_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The HPN learner's weights from a state dict in any of the known layouts, as float32.

    Accepts our checkpoints (`{"learner": {...}}` or a bare learner state), and the reference's:
    a full HSNet state dict with or without the `module.` prefix of a data-parallel wrapper, whose learner keys
    are `hpn_learner.*` and whose backbone keys (`backbone.*`) are ignored here.
    """
    if "learner" in state and isinstance(state["learner"], Mapping):
        state = state["learner"]
    elif "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    learner = {}
    for key, value in state.items():
        if not torch.is_tensor(value):
            continue
        if key.startswith("module."):
            key = key[len("module."):]
        if key.startswith("backbone."):
            continue
        if key.startswith("hpn_learner."):
            key = key[len("hpn_learner."):]
        learner[key] = value.float() if value.is_floating_point() else value
    return learner


def load_hsnet_checkpoint(model: HSNet, checkpoint: str | Path | Mapping[str, torch.Tensor]) -> HSNet:
    """Load learner weights into `model` from a file or a state dict (ours, HSNet's or HM's).

    Official HSNet/HM `best_model.pt` files (saved from a data-parallel wrapper) work as they are.
    Float16 weights are cast to float32. Raises ValueError naming missing/unexpected keys.
    """
    if isinstance(checkpoint, (str, Path)):
        checkpoint = read_checkpoint(checkpoint)
    load_learner(model.hpn_learner, checkpoint, model.backbone_name)
    return model


def load_learner(learner: torch.nn.Module, checkpoint: Mapping, backbone: str) -> None:
    """Load the learner weights of a checkpoint's state into `learner` (the HPN learner of `backbone`).

    Raises ValueError naming missing/unexpected keys and wrong shapes.
    """
    state = learner_state_dict(checkpoint)
    expected = learner.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong_shape:
        raise ValueError(
            f"checkpoint does not fit the {backbone} HPN learner (was it trained with another "
            f"backbone?): missing keys {missing[:4]}, unexpected keys {unexpected[:4]}, "
            f"wrong shapes {[(k, tuple(state[k].shape), tuple(expected[k].shape)) for k in wrong_shape[:2]]}"
        )
    learner.load_state_dict(state)


# Blocks per stage and block type of each supported ResNet, as they show in a state dict's keys.
_SIGNATURES = {
    ("bottleneck", 6): "resnet50",
    ("bottleneck", 23): "resnet101",
    ("basic", 2): "resnet18",
    ("basic", 6): "resnet34",
}
_BACKBONE_KEY = re.compile(r"^(?:module\.)?backbone\.(.+)$")


def read_checkpoint(path: str | Path) -> Mapping:
    """A checkpoint file's contents, loaded on the CPU with `weights_only=True`.

    Takes both torch serialisation formats (the zip format of torch >= 1.6 and the older one that
    the released HSNet / HM files may use); a file that is not a torch checkpoint, or that needs
    code to unpickle, is a ValueError naming it.
    """
    state = load_torch_file(Path(path), "checkpoint", "train its run again (make fold RUN=...) or download the "
                                                      "released file again (python -m hmfs fetch)")
    if not isinstance(state, Mapping):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def check_finite_weights(state: Mapping, path: str | Path) -> None:
    """ValueError naming `path` and its first NaN or infinite weights (a diverged training's file)."""
    tensors = state.get("learner", state) if isinstance(state.get("learner"), Mapping) else state
    bad = [k for k, v in tensors.items() if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ValueError(f"{path} holds NaN or infinite weights ({', '.join(map(str, bad[:3]))}"
                         f"{', …' if len(bad) > 3 else ''}): a diverged training; train it again with a lower learning rate")


def backbone_state_dict(state: Mapping) -> dict[str, torch.Tensor]:
    """The `backbone.*` weights of a full HSNet state dict (with or without `module.`), prefix removed.

    Empty for our own checkpoints, which keep only the learner.
    """
    backbone = {}
    for key, value in state.items():
        match = _BACKBONE_KEY.match(key) if isinstance(key, str) else None
        if match and torch.is_tensor(value):
            backbone[match.group(1)] = value
    return backbone


def infer_backbone(backbone_state: Mapping[str, torch.Tensor]) -> str | None:
    """Which ResNet a backbone state dict is (from its layer3 block count and block type); None if unknown."""
    blocks = {int(m.group(1)) for key in backbone_state if (m := re.match(r"layer3\.(\d+)\.", key))}
    if not blocks:
        return None
    kind = "bottleneck" if any(key.startswith("layer3.0.conv3.") for key in backbone_state) else "basic"
    return _SIGNATURES.get((kind, max(blocks) + 1))


def check_checkpoint_backbone(state: Mapping, backbone: str, path: str | Path) -> bool:
    """Raise when a checkpoint carrying backbone weights holds another backbone than `backbone`.

    Returns whether the checkpoint carries backbone weights at all (the released HSNet / HM files do).
    """
    weights = backbone_state_dict(state)
    if not weights:
        return False
    found = infer_backbone(weights)
    if found != backbone:
        raise ValueError(
            f"{path} holds a {found or 'unrecognised'} backbone (layer3 of its backbone.* keys), but it is "
            f"configured as {backbone}: move it to the folder of {found or 'its backbone'} or fix the backbone")
    return True


def checkpoint_metadata(state: Mapping) -> dict:
    """What a checkpoint says about itself: epoch and validation mIoU where its authors stored them."""
    meta = {}
    for key, names in (("epoch", ("epoch",)), ("val_miou", ("val_miou", "best_val_miou", "miou"))):
        for name in names:
            value = state.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                meta[key] = value
                break
            if torch.is_tensor(value) and value.numel() == 1:
                meta[key] = value.item()
                break
    return meta
