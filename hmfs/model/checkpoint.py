"""Loading learner weights: ours, and the reference HSNet / HM checkpoints (`module.`, `hpn_learner.*`)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

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
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = learner_state_dict(checkpoint)
    expected = model.hpn_learner.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong_shape:
        raise ValueError(
            f"checkpoint does not fit the {model.backbone_name} HPN learner (was it trained with another "
            f"backbone?): missing keys {missing[:4]}, unexpected keys {unexpected[:4]}, "
            f"wrong shapes {[(k, tuple(state[k].shape), tuple(expected[k].shape)) for k in wrong_shape[:2]]}"
        )
    model.hpn_learner.load_state_dict(state)
    return model
