"""An analytic FLOP model of HSNet with FM/IM/HM (backbone, correlation, 4D-conv learner), torch-free, counted as FlopCounterMode counts."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hmfs.names import BACKBONE_BLOCKS as RESNET_BLOCKS
from hmfs.names import MASKINGS, SUPPORT_MAPS

# Counted as torch.utils.flop_counter.FlopCounterMode counts: convolutions and matrix products only,
# a multiply-add is 2 FLOPs, biases, norms, activations, interpolations and losses are free. A
# convolution's backward is its forward twice (grad input, grad weight), once when its input needs
# no gradient (the learner's first 4D convolutions read the correlation, which has none).

BOTTLENECK = ("resnet50", "resnet101")  # expansion 4; the others use BasicBlock (expansion 1)
STAGE_PLANES = (64, 128, 256, 512)

# HSNet's learner (hmfs/model/learner.py): squeeze channels, and per level its kernels and support strides.
LEARNER_CHANNELS = (16, 64, 128)
LEARNER_SQUEEZE = {  # deepest first, as the correlation pyramid
    "layer4": ((3, 3, 3), (2, 2, 2)),
    "layer3": ((5, 3, 3), (4, 2, 2)),
    "layer2": ((5, 5, 3), (4, 4, 2)),
}


def conv_flops(c_in: int, c_out: int, kernel: int, out_h: int, out_w: int, batch: int = 1) -> int:
    """A 2D convolution's FLOPs: 2 x batch x c_out x out_h x out_w x c_in x kernel^2 (no bias)."""
    return 2 * batch * c_out * out_h * out_w * c_in * kernel * kernel


def _halve(size: int) -> int:
    """Output side of a stride-2 conv (odd kernel k, padding k // 2) or max-pool 3/2/1: ceil(size / 2)."""
    return (size + 1) // 2


def backbone_pass(backbone: str, size: int) -> tuple[int, list[tuple[int, int, int]]]:
    """FLOPs of one (size x size) image through `backbone` up to its last block, and the (C, h, w) of
    every feature map HSNet takes (every block of layers 2-4, shallowest first)."""
    if backbone not in RESNET_BLOCKS:
        raise ValueError(f"unknown backbone {backbone!r}; accepted: {', '.join(RESNET_BLOCKS)}")
    bottleneck = backbone in BOTTLENECK
    side = _halve(size)
    flops = conv_flops(3, 64, 7, side, side)  # conv1, stride 2
    side = _halve(side)  # max-pool
    inplanes, feats = 64, []
    for stage, (planes, blocks) in enumerate(zip(STAGE_PLANES, RESNET_BLOCKS[backbone])):
        for block in range(blocks):
            out_side = _halve(side) if stage > 0 and block == 0 else side
            if bottleneck:
                out = planes * 4
                flops += (conv_flops(inplanes, planes, 1, side, side) + conv_flops(planes, planes, 3, out_side, out_side)
                          + conv_flops(planes, out, 1, out_side, out_side))
            else:
                out = planes
                flops += conv_flops(inplanes, planes, 3, out_side, out_side) + conv_flops(planes, planes, 3, out_side, out_side)
            if out_side != side or inplanes != out:  # torchvision's downsample: 1x1 conv, the block's stride
                flops += conv_flops(inplanes, out, 1, out_side, out_side)
            inplanes, side = out, out_side
            if stage > 0:
                feats.append((out, side, side))
    return flops, feats


def correlation_flops(feats: list[tuple[int, int, int]]) -> int:
    """The correlation pyramid of one query-support pair: one (h*w, C) x (C, h*w) product per map."""
    return sum(2 * c * (h * w) ** 2 for c, h, w in feats)


def _center_pivot(c_in: int, c_out: int, kernel: int, stride: int, query: tuple[int, int],
                  support: tuple[int, int]) -> tuple[int, tuple[int, int]]:
    """A center-pivot 4D conv: a query-dims conv at the kept support positions plus a strided
    support-dims conv at every query position; both cost the same. Returns FLOPs, support dims out."""
    kept = (math.ceil(support[0] / stride), math.ceil(support[1] / stride))
    return 2 * conv_flops(c_in, c_out, kernel, *query) * kept[0] * kept[1], kept


@dataclass(frozen=True)
class LearnerFlops:
    forward: int
    backward: int  # of a training step: no gradient into the correlation


def learner_flops(feats: list[tuple[int, int, int]]) -> LearnerFlops:
    """HSNet's HPN learner on the correlation pyramid of `feats` (the maps of `backbone_pass`)."""
    levels = {}  # layer name -> (maps, side of query and support dims)
    for name, c_level in zip(("layer2", "layer3", "layer4"), sorted({c for c, _, _ in feats})):
        maps = [(h, w) for c, h, w in feats if c == c_level]
        levels[name] = (len(maps), maps[0])
    forward = first_layers = 0
    squeezed = {}
    for name, (kernels, strides) in LEARNER_SQUEEZE.items():
        c_in, query = levels[name]
        support = query
        for i, (c_out, kernel, stride) in enumerate(zip(LEARNER_CHANNELS, kernels, strides)):
            flops, support = _center_pivot(c_in, c_out, kernel, stride, query, support)
            forward += flops
            first_layers += flops if i == 0 else 0
            c_in = c_out
        squeezed[name] = (query, support)
    top = LEARNER_CHANNELS[-1]
    for name in ("layer3", "layer2"):  # encoder_layer4to3, encoder_layer3to2: three 128 -> 128 blocks each
        query, support = squeezed[name]
        forward += 3 * _center_pivot(top, top, 3, 1, query, support)[0]
    h2, w2 = squeezed["layer2"][0]
    mid = LEARNER_CHANNELS[1]
    forward += conv_flops(top, top, 3, h2, w2) + conv_flops(top, mid, 3, h2, w2)  # decoder1
    side = 2 * w2  # the reference's square x2 upsampling, based on the width
    forward += conv_flops(mid, mid, 3, side, side) + conv_flops(mid, 2, 3, side, side)  # decoder2
    return LearnerFlops(forward, 2 * forward - first_layers)


def support_passes(masking: str) -> int:
    """Backbone passes one support needs under `masking`: FM 1 (plain), IM 1 (masked), HM 2 (both)."""
    if masking not in SUPPORT_MAPS:
        raise ValueError(f"unknown masking {masking!r}; accepted: {', '.join(MASKINGS)}")
    return sum(SUPPORT_MAPS[masking])


@dataclass(frozen=True)
class EpisodeFlops:
    """FLOPs of one episode of `backbone` x `masking` at size x size, by stage."""

    backbone_pass: int  # one image
    correlation: int  # one query-support pair
    learner: LearnerFlops  # one query-support pair
    masking: str

    def evaluation(self, shot: int) -> int:
        """A k-shot evaluation's forward: the query once, k supports, k correlations and learner passes
        (HSNet.predict_mask_nshot)."""
        return ((1 + shot * support_passes(self.masking)) * self.backbone_pass
                + shot * (self.correlation + self.learner.forward))

    @property
    def training_forward(self) -> int:
        """A 1-shot training episode's forward (the frozen backbone included, run without gradients)."""
        return self.evaluation(1)

    @property
    def training_backward(self) -> int:
        """Its backward: the learner's only (backbone and correlation run without gradients)."""
        return self.learner.backward


def episode_flops(backbone: str, masking: str, size: int) -> EpisodeFlops:
    """The FLOP model of one episode at `size` x `size` inputs."""
    support_passes(masking)
    per_image, feats = backbone_pass(backbone, size)
    return EpisodeFlops(per_image, correlation_flops(feats), learner_flops(feats), masking)
