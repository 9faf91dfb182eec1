"""Center-pivot 4D convolution: a 2D conv over the query dims plus a 2D conv over the support dims."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CenterPivotConv4d(nn.Module):
    """Center-pivot 4D convolution on (B, C, Ha, Wa, Hb, Wb) correlation tensors.

    The 4D kernel is restricted to the two "pivot" planes through its centre: `conv1` convolves
    the query dims (Ha, Wa) at the support positions kept by the support stride, `conv2`
    convolves (and strides) the support dims (Hb, Wb) at every query position; their sum is the
    output (B, C_out, Ha, Wa, ceil(Hb / s), ceil(Wb / s)). Query dims are never strided.

    On the CPU both 2D convs run in the channels-last layout (input and a channels-last copy of the
    weight, so the parameters, their gradients and Adam's state keep one layout): the learner's
    training step took 151 ms instead of 165 ms and its forward 29 ms instead of 41 ms (ResNet-18
    maps of 96x96 inputs, batch 4, one thread, medians of 9; docs/speed.md).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, support_stride: int):
        super().__init__()
        padding = kernel_size // 2
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=padding)
        self.conv2 = nn.Conv2d(in_channels, out_channels, kernel_size, stride=support_stride, padding=padding)
        self.support_stride = support_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bsz, ch, ha, wa, hb, wb = x.shape
        s = self.support_stride
        # Query-dim conv at the support positions 0, s, 2s, ... (those the support conv keeps).
        pruned = x[..., ::s, ::s] if s > 1 else x  # (B, C, Ha, Wa, hb', wb')
        hb_out, wb_out = pruned.shape[-2:]
        out1 = pruned.permute(0, 4, 5, 1, 2, 3).reshape(-1, ch, ha, wa)
        out1 = self._conv(self.conv1, out1)  # (B*hb'*wb', C_out, Ha, Wa)
        out_ch = out1.shape[1]
        out1 = out1.view(bsz, hb_out, wb_out, out_ch, ha, wa).permute(0, 3, 4, 5, 1, 2)
        # Support-dim conv at every query position.
        out2 = x.permute(0, 2, 3, 1, 4, 5).reshape(-1, ch, hb, wb)
        out2 = self._conv(self.conv2, out2)  # (B*Ha*Wa, C_out, hb', wb')
        out2 = out2.view(bsz, ha, wa, out_ch, hb_out, wb_out).permute(0, 3, 1, 2, 4, 5)
        return (out1 + out2).contiguous()  # (B, C_out, Ha, Wa, hb', wb')

    @staticmethod
    def _conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        """`conv(x)` (N, C, H, W) -> (N, C_out, H', W') contiguous; channels-last inside on the CPU (see the class).

        Under autocast on the CPU a strided conv runs in fp32 and returns autocast's dtype: torch 2.14's
        bf16 weight gradient of a strided conv whose kernel overhangs a small input (1x1 input, 3x3
        kernel, stride 2; 3x3 input, 5x5 kernel, stride 4) comes out as values near 1e35 on CPUs with
        AVX512-BF16, so bf16 training diverged at its first steps (docs/speed.md, "Precision").
        """
        if x.device.type != "cpu":
            return conv(x)
        layout = torch.channels_last
        if conv.stride != (1, 1) and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                out = F.conv2d(x.float().contiguous(memory_format=layout), conv.weight.contiguous(memory_format=layout),
                               conv.bias, conv.stride, conv.padding)
            return out.to(torch.get_autocast_dtype("cpu")).contiguous()
        out = F.conv2d(x.contiguous(memory_format=layout), conv.weight.contiguous(memory_format=layout), conv.bias,
                       conv.stride, conv.padding)
        return out.contiguous()
