"""Support masking strategies: feature masking (HSNet), input masking, hybrid masking (HMFS)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

MASKINGS = ("fm", "im", "hm")
MASKING_NAMES = {"fm": "feature_masking", "im": "input_masking", "hm": "hybrid_masking"}


def check_masking_name(name: str) -> None:
    if name not in MASKINGS:
        raise ValueError(
            f"unknown masking {name!r}; accepted: "
            + ", ".join(f"{k} ({v})" for k, v in MASKING_NAMES.items())
        )


def feature_masking(features: list[torch.Tensor], mask: torch.Tensor) -> list[torch.Tensor]:
    """FM: each (B, C, h, w) map times the (B, H, W) mask resized bilinearly to (h, w).

    align_corners=True, as HSNet's `mask_feature`.
    """
    mask = mask.unsqueeze(1).to(features[0].dtype)  # (B, 1, H, W)
    return [f * F.interpolate(mask, f.shape[-2:], mode="bilinear", align_corners=True) for f in features]


def input_masking(img: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """IM: the normalised (B, 3, H, W) image times its (B, H, W) mask on every channel.

    As in the reference, the product is taken in normalised space, so the background becomes
    the ImageNet mean colour (0), not black.
    """
    return img * mask.unsqueeze(1).to(img.dtype)


def hybrid_masking(fm_features: list[torch.Tensor], im_features: list[torch.Tensor]) -> list[torch.Tensor]:
    """HM: keep every positive FM value, take the IM value wherever FM is zero or negative.

    Both lists hold matching (B, C, h, w) maps; the maps are pre-ReLU, so "not activated" is
    `<= 0`, exactly `where(FM > 0, FM, IM)` as in the HM authors' code.
    """
    return [torch.where(fm > 0, fm, im) for fm, im in zip(fm_features, im_features)]


def masked_support_features(
    masking: str,
    extract: Callable[[torch.Tensor], list[torch.Tensor]],
    support_img: torch.Tensor,
    support_mask: torch.Tensor,
) -> list[torch.Tensor]:
    """Support features under `masking` ("fm", "im" or "hm").

    extract: image (B, 3, H, W) -> feature maps; support_img (B, 3, H, W); support_mask (B, H, W)
    in {0, 1}. HM runs the backbone on the plain and on the masked image in one batch of 2B.
    """
    check_masking_name(masking)
    if masking == "fm":
        return feature_masking(extract(support_img), support_mask)
    if masking == "im":
        return extract(input_masking(support_img, support_mask))
    batch = support_img.shape[0]
    both = extract(torch.cat([support_img, input_masking(support_img, support_mask)]))
    plain = [f[:batch] for f in both]
    masked_input = [f[batch:] for f in both]
    return hybrid_masking(feature_masking(plain, support_mask), masked_input)
