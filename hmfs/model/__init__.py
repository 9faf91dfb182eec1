"""HSNet with a selectable support-masking strategy (fm, im, hm) and its parts."""

from hmfs.model.backbone import BACKBONES, build_backbone
from hmfs.model.checkpoint import load_hsnet_checkpoint, learner_state_dict
from hmfs.model.hsnet import HSNet
from hmfs.model.masking import MASKINGS

__all__ = [
    "BACKBONES",
    "MASKINGS",
    "HSNet",
    "build_backbone",
    "learner_state_dict",
    "load_hsnet_checkpoint",
]
