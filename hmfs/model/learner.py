"""HSNet's hypercorrelation squeeze-and-mix learner (HPN learner) and its 2D decoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hmfs.model.conv4d import CenterPivotConv4d

# (output channels, kernel sizes, support strides) of the three squeeze blocks, as in HSNet.
_CHANNELS = (16, 64, 128)
_SQUEEZE = {
    "layer4": ((3, 3, 3), (2, 2, 2)),
    "layer3": ((5, 3, 3), (4, 2, 2)),
    "layer2": ((5, 5, 3), (4, 4, 2)),
}


def _block(in_channels: int, out_channels: tuple[int, ...], kernels: tuple[int, ...], strides: tuple[int, ...]) -> nn.Sequential:
    """Center-pivot 4D conv + GroupNorm(4) + ReLU, once per (channels, kernel, stride)."""
    layers: list[nn.Module] = []
    for out_ch, kernel, stride in zip(out_channels, kernels, strides):
        layers += [CenterPivotConv4d(in_channels, out_ch, kernel, stride), nn.GroupNorm(4, out_ch), nn.ReLU(inplace=True)]
        in_channels = out_ch
    return nn.Sequential(*layers)


def resize_query_dims(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize the query dims of (B, C, Ha, Wa, Hb, Wb) to `size` (align_corners=True)."""
    bsz, ch, ha, wa, hb, wb = x.shape
    x = x.permute(0, 4, 5, 1, 2, 3).reshape(bsz * hb * wb, ch, ha, wa)
    x = F.interpolate(x, size, mode="bilinear", align_corners=True)
    return x.view(bsz, hb, wb, ch, *size).permute(0, 3, 4, 5, 1, 2).contiguous()


class HPNLearner(nn.Module):
    """Squeezes the correlation pyramid to (B, 2, H/4, W/4)-ish foreground/background logits.

    in_channels: maps per level, deepest first (ResNet-50: (3, 6, 4)). Parameter names follow the
    reference (`encoder_layer4`, ..., `decoder2`), so its weights load without renaming.
    """

    def __init__(self, in_channels: tuple[int, int, int]):
        super().__init__()
        c1, c2, c3 = _CHANNELS
        for name, inch in zip(("layer4", "layer3", "layer2"), in_channels):
            kernels, strides = _SQUEEZE[name]
            setattr(self, f"encoder_{name}", _block(inch, _CHANNELS, kernels, strides))
        self.encoder_layer4to3 = _block(c3, (c3, c3, c3), (3, 3, 3), (1, 1, 1))
        self.encoder_layer3to2 = _block(c3, (c3, c3, c3), (3, 3, 3), (1, 1, 1))
        self.decoder1 = nn.Sequential(
            nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(), nn.Conv2d(c3, c2, 3, padding=1), nn.ReLU()
        )
        self.decoder2 = nn.Sequential(nn.Conv2d(c2, c2, 3, padding=1), nn.ReLU(), nn.Conv2d(c2, 2, 3, padding=1))

    def forward(self, corr_pyramid: list[torch.Tensor]) -> torch.Tensor:
        """corr_pyramid: [layer4, layer3, layer2] correlations (B, n_l, Ha, Wa, Hb, Wb).

        Returns logits (B, 2, 2 * Ha2, 2 * Ha2) where Ha2 is the layer2 query size.
        """
        sqz4 = self.encoder_layer4(corr_pyramid[0])  # (B, 128, Ha4, Wa4, hb, wb)
        sqz3 = self.encoder_layer3(corr_pyramid[1])  # (B, 128, Ha3, Wa3, hb, wb)
        sqz2 = self.encoder_layer2(corr_pyramid[2])  # (B, 128, Ha2, Wa2, hb, wb)
        mix43 = self.encoder_layer4to3(resize_query_dims(sqz4, sqz3.shape[2:4]) + sqz3)
        mix432 = self.encoder_layer3to2(resize_query_dims(mix43, sqz2.shape[2:4]) + sqz2)
        bsz, ch, ha, wa = mix432.shape[:4]
        encoded = mix432.reshape(bsz, ch, ha, wa, -1).mean(dim=-1)  # (B, 128, Ha2, Wa2)
        decoded = self.decoder1(encoded)  # (B, 64, Ha2, Wa2)
        # As the reference: a square x2 upsampling based on the width.
        side = decoded.shape[-1] * 2
        decoded = F.interpolate(decoded, (side, side), mode="bilinear", align_corners=True)
        return self.decoder2(decoded)  # (B, 2, 2 * Wa2, 2 * Wa2)
