"""Frozen ResNet backbones and HSNet's feature extraction (every block of layers 2-4, pre-ReLU)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
import torchvision
from torch import nn

from hmfs.files import load_torch_file
from hmfs.names import BACKBONE_BLOCKS, BACKBONES


log = logging.getLogger(__name__)

_BLOCKS = BACKBONE_BLOCKS  # blocks per stage of each supported torchvision ResNet (hmfs.names)


@dataclass(frozen=True)
class FeatureLayout:
    """Which blocks give features, and how HSNet groups their correlations.

    `block_layers[i]` is the stage (1..4) of block i (blocks numbered over the whole net, as the
    reference's `lids`); features come from every block of stages 2, 3 and 4 (`feat_ids`, 1-based
    block numbers); `stack_ids` are the cumulative numbers of maps per stage, deepest first
    (e.g. ResNet-50: layer4 has 3 maps, layer3 6, layer2 4 -> (3, 9, 13)).
    """

    block_layers: tuple[int, ...]
    feat_ids: tuple[int, ...]
    stack_ids: tuple[int, int, int]

    @property
    def maps_per_level(self) -> tuple[int, int, int]:
        """Number of correlation maps of layer4, layer3, layer2 (the learner's input channels)."""
        s4, s3, s2 = self.stack_ids
        return (s4, s3 - s4, s2 - s3)


def check_backbone_name(name: str) -> None:
    if name not in _BLOCKS:
        raise ValueError(f"unknown backbone {name!r}; accepted: {', '.join(BACKBONES)}")


def feature_layout(name: str) -> FeatureLayout:
    """The `FeatureLayout` of backbone `name` (one of `BACKBONES`)."""
    check_backbone_name(name)
    blocks = _BLOCKS[name]
    block_layers = tuple(layer for layer, n in enumerate(blocks, start=1) for _ in range(n))
    feat_ids = tuple(i + 1 for i, layer in enumerate(block_layers) if layer >= 2)
    n2, n3, n4 = blocks[1], blocks[2], blocks[3]
    return FeatureLayout(block_layers, feat_ids, (n4, n4 + n3, n4 + n3 + n2))


# The paper names ResNet-50 layers by counting its weighted layers (Fig. 6: "layer34", "layer50"):
# conv1 is layer 1, each bottleneck block adds three convolutions (layer1: 2-10, layer2: 11-22,
# layer3: 23-40, layer4: 41-49) and the fc head is layer 50.
PAPER_LAYER_NET = "resnet50"
_CONVS_PER_BLOCK = 3  # ResNet-50's bottleneck blocks


@dataclass(frozen=True)
class NamedLayer:
    """Where one of the paper's ResNet-50 layer names ("layer34") falls on `backbone`.

    The map shown is the output of block `block` (1-based over the whole net, `FeatureLayout`'s
    numbering; after the residual add, before the ReLU: what `extract_features` returns at
    `feature_index`), block `block_in_stage` of `blocks_in_stage` of stage `stage` (layer2..layer4).
    """

    name: str
    backbone: str
    stage: int
    block_in_stage: int
    blocks_in_stage: int
    block: int
    feature_index: int

    @property
    def where(self) -> str:
        return f"layer{self.stage}[{self.block_in_stage - 1}] (block {self.block_in_stage}/{self.blocks_in_stage})"


def named_layer(backbone: str, name: str) -> NamedLayer:
    """The block of `backbone` whose output shows the paper's ResNet-50 layer `name` ("layer<n>").

    On ResNet-50, layer n (2..49) is a convolution inside bottleneck block ceil((n - 1) / 3); its
    block's output is shown (layer34: the last convolution of block 11 = layer3, 4th of 6 blocks).
    Layer 50 is the fc head: its input, the last block's output (layer4, 3rd of 3), is shown, before
    the average pooling. On another backbone the same stage is used, at the same relative position:
    block ceil(j * n' / n) of its n' blocks for block j of ResNet-50's n (ResNet-18: layer34 ->
    layer3, 2nd of 2 blocks; layer50 -> layer4, 2nd of 2). Only stages 2-4 have features
    (layer11..layer50); a name outside them is a ValueError.
    """
    check_backbone_name(backbone)
    reference = _BLOCKS[PAPER_LAYER_NET]
    total = 1 + _CONVS_PER_BLOCK * sum(reference) + 1  # conv1, the blocks' convolutions, fc
    first = 1 + _CONVS_PER_BLOCK * reference[0] + 1  # the first convolution of layer2
    number = name[len("layer"):] if name.startswith("layer") else ""
    if not number.isdigit() or not first <= int(number) <= total:
        raise ValueError(f"unknown layer name {name!r}; accepted: layer{first}..layer{total} ({PAPER_LAYER_NET}'s "
                         "weighted layers counted from conv1 = 1, three per bottleneck block, fc = the last; "
                         "conv1 and layer1 give HSNet no features)")
    n = int(number)
    # Block over the whole ResNet-50 (1-based); fc shows its input, the last block's output.
    block = sum(reference) if n == total else -(-(n - 1) // _CONVS_PER_BLOCK)
    stage = next(s for s in range(1, 5) if block <= sum(reference[:s]))
    position = block - sum(reference[:stage - 1])  # 1-based within the stage
    blocks = _BLOCKS[backbone]
    here = -(-position * blocks[stage - 1] // reference[stage - 1])  # ceil: same relative position
    block_number = sum(blocks[:stage - 1]) + here
    layout = feature_layout(backbone)
    return NamedLayer(name, backbone, stage, here, blocks[stage - 1], block_number,
                      layout.feat_ids.index(block_number))


def clean_backbone_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the classifier head and `module.`/`backbone.` prefixes from a ResNet state dict."""
    cleaned = {}
    for key, value in state.items():
        for prefix in ("module.", "backbone."):
            if key.startswith(prefix):
                key = key[len(prefix):]
        if key.startswith("fc."):
            continue
        cleaned[key] = value
    return cleaned


def build_backbone(
    name: str,
    weights: str | Path | Mapping[str, torch.Tensor] | None = None,
    random_init: bool = False,
) -> nn.Module:
    """A frozen torchvision ResNet in eval mode, without its classifier head.

    `weights` is a local file (a torchvision ResNet state dict, e.g. the IMAGENET1K_V1 file, or
    a dict holding one under "state_dict"/"model") or a state dict. Nothing is downloaded.
    Random weights only with `random_init=True` (then the current torch RNG decides them, as
    `torchvision.models.<name>(weights=None)` does).
    """
    check_backbone_name(name)
    if weights is None and not random_init:
        raise ValueError(
            f"backbone {name!r} needs weights: pass a local weights file or state dict "
            "(e.g. torchvision's IMAGENET1K_V1 file), or ask for random weights explicitly "
            "(random_init=True / --random-backbone)"
        )
    backbone = getattr(torchvision.models, name)(weights=None)
    backbone.fc = nn.Identity()
    if weights is not None:
        if isinstance(weights, (str, Path)):
            state = load_torch_file(Path(weights), "backbone weights file",
                                    "fetch it again (python -m hmfs fetch), or pass another file")
            for key in ("state_dict", "model"):
                if isinstance(state, dict) and key in state and isinstance(state[key], dict):
                    state = state[key]
        else:
            state = weights
        try:
            missing, unexpected = backbone.load_state_dict(clean_backbone_state_dict(state), strict=False)
        except RuntimeError as error:  # tensors of another shape: another architecture
            raise ValueError(f"weights do not fit {name}: {str(error).splitlines()[1].strip()} (is it a {name} state dict?)") from error
        if missing or unexpected:
            raise ValueError(
                f"weights do not fit {name}: missing {sorted(missing)[:5]}, unexpected "
                f"{sorted(unexpected)[:5]} (is it a {name} state dict?)"
            )
    backbone.eval()
    for parameter in backbone.parameters():
        parameter.requires_grad_(False)
    return backbone


def _match_memory_format(backbone: nn.Module, device: torch.device) -> bool:
    """Channels-last weights on the CPU, channels-first elsewhere; True when the CPU layout applies.

    On the CPU, channels-last convolutions ran the ResNet-18 backbone 1.3x faster at 96x96 for
    batches of 4-16 (equal at batch 1; features within 3e-5); both the weights and the input must
    be channels-last for that. On the GPU the reference layout is kept (not measured here). The
    weights are re-laid out in place when the device changes: a layout, not a value, changes.
    """
    channels_last = device.type == "cpu"
    wanted = torch.channels_last if channels_last else torch.contiguous_format
    if not backbone.conv1.weight.is_contiguous(memory_format=wanted):
        backbone.to(memory_format=wanted)
    return channels_last


def extract_features(backbone: nn.Module, img: torch.Tensor, layout: FeatureLayout) -> list[torch.Tensor]:
    """Features of every block in `layout.feat_ids`, after the residual add and before the ReLU.

    img: (B, 3, H, W) normalised. Returns one (B, C_i, H_i, W_i) map per feature id, shallowest
    first (ResNet-50 at 400x400: 4 x (512, 50, 50), 6 x (1024, 25, 25), 3 x (2048, 13, 13)).
    Works for Bottleneck and BasicBlock ResNets.
    """
    channels_last = _match_memory_format(backbone, img.device)
    if channels_last:
        img = img.contiguous(memory_format=torch.channels_last)
    feat = backbone.maxpool(backbone.relu(backbone.bn1(backbone.conv1(img))))
    wanted = set(layout.feat_ids)
    last = max(layout.feat_ids)
    feats = []
    block_number = 0
    for stage in range(1, 5):
        for block in getattr(backbone, f"layer{stage}"):
            block_number += 1
            identity = feat if block.downsample is None else block.downsample(feat)
            out = block.relu(block.bn1(block.conv1(feat)))
            if hasattr(block, "conv3"):  # Bottleneck
                out = block.relu(block.bn2(block.conv2(out)))
                out = block.bn3(block.conv3(out))
            else:  # BasicBlock
                out = block.bn2(block.conv2(out))
            out = out + identity  # (B, C, h, w), pre-ReLU: the map HSNet correlates
            if block_number in wanted:
                feats.append(out.contiguous() if channels_last else out)  # the caller's layout: channels first
            if block_number == last:
                return feats
            feat = torch.relu(out)  # not block.relu: it is in-place and `out` is kept
    return feats
