"""Support masking strategies: feature masking (HSNet), input masking, hybrid masking (HMFS)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from hmfs.names import MASKINGS, SUPPORT_MAPS  # noqa: F401 (MASKINGS: re-exported by hmfs.model)

Maps = list[torch.Tensor]  # one (B, C, h, w) backbone map per feature block


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


@dataclass(frozen=True)
class Masking:
    """One support-masking strategy: which backbone maps it needs and how it combines them.

    `plain`: needs the maps of the plain support image; `masked_input`: the maps of the
    input-masked support image. `combine(plain_maps, masked_maps, mask)` -> the masked support
    maps, each (B, C, h, w); mask (B, H, W) in {0, 1}; a map list it does not need is None.
    """

    name: str  # as in hmfs.names.MASKINGS
    long_name: str  # the paper's
    plain: bool
    masked_input: bool
    combine: Callable[[Optional[Maps], Optional[Maps], torch.Tensor], Maps]


# The one registry of maskings, used by HSNet and by the training's feature cache alike.
MASKING_REGISTRY = {m.name: m for m in (
    Masking("fm", "feature_masking", *SUPPORT_MAPS["fm"], lambda plain, masked, mask: feature_masking(plain, mask)),
    Masking("im", "input_masking", *SUPPORT_MAPS["im"], lambda plain, masked, mask: masked),
    Masking("hm", "hybrid_masking", *SUPPORT_MAPS["hm"],
            lambda plain, masked, mask: hybrid_masking(feature_masking(plain, mask), masked)),
)}


def get_masking(name: str) -> Masking:
    """The strategy named `name` ("fm", "im" or "hm"); ValueError naming the accepted ones."""
    if name not in MASKING_REGISTRY:
        raise ValueError(f"unknown masking {name!r}; accepted: "
                         + ", ".join(f"{m.name} ({m.long_name})" for m in MASKING_REGISTRY.values()))
    return MASKING_REGISTRY[name]


def masked_support_features(
    masking: str,
    extract: Callable[[torch.Tensor], list[torch.Tensor]],
    support_img: torch.Tensor,
    support_mask: torch.Tensor,
) -> list[torch.Tensor]:
    """Support features under `masking` ("fm", "im" or "hm").

    extract: image (B, 3, H, W) -> feature maps; support_img (B, 3, H, W); support_mask (B, H, W)
    in {0, 1}. A masking that needs both maps (HM) runs the backbone on the plain and on the
    masked image in one batch of 2B.
    """
    strategy = get_masking(masking)
    plain = masked = None
    if strategy.plain and strategy.masked_input:
        batch = support_img.shape[0]
        both = extract(torch.cat([support_img, input_masking(support_img, support_mask)]))
        plain, masked = [f[:batch] for f in both], [f[batch:] for f in both]
    elif strategy.plain:
        plain = extract(support_img)
    else:
        masked = extract(input_masking(support_img, support_mask))
    return strategy.combine(plain, masked, support_mask)
