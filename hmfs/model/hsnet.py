"""HSNet (Min et al., ICCV 2021) with the support masking chosen by name: fm, im or hm (HMFS)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from hmfs.model.backbone import build_backbone, extract_features, feature_layout
from hmfs.model.correlation import multilayer_correlation
from hmfs.model.learner import HPNLearner
from hmfs.model.masking import get_masking, masked_support_features


# Largest layer-2 correlation (elements) batched per k-shot pass on the CPU (64 MiB of float32).
CPU_PASS_ELEMENTS = 1 << 24


class HSNet(nn.Module):
    """Frozen backbone -> masked support features -> correlation pyramid -> HPN learner.

    backbone: "resnet18" | "resnet34" | "resnet50" | "resnet101"; masking: "fm" (HSNet's feature
    masking), "im" (input masking) or "hm" (hybrid masking, the HMFS paper). Backbone weights
    come from `backbone_weights` (local file or state dict); random ones only with
    `random_backbone=True`. Only `hpn_learner` is trainable.
    """

    def __init__(
        self,
        backbone: str,
        masking: str,
        backbone_weights: str | Path | Mapping[str, torch.Tensor] | None = None,
        random_backbone: bool = False,
        use_original_imgsize: bool = False,
    ):
        super().__init__()
        get_masking(masking)  # a ValueError naming the accepted ones
        self.backbone_name = backbone
        self.masking = masking
        self.layout = feature_layout(backbone)
        self.backbone = build_backbone(backbone, backbone_weights, random_init=random_backbone)
        self.hpn_learner = HPNLearner(self.layout.maps_per_level)
        self.use_original_imgsize = use_original_imgsize

    # -- the three stages, separately callable (the benchmark times them one by one) --------
    def extract(self, img: torch.Tensor) -> list[torch.Tensor]:
        """Backbone feature maps of (B, 3, H, W) images (no gradients: the backbone is frozen)."""
        with torch.no_grad():
            return extract_features(self.backbone, img, self.layout)

    def support_features(self, support_img: torch.Tensor, support_mask: torch.Tensor) -> list[torch.Tensor]:
        """Masked support maps; support_img (B, 3, H, W), support_mask (B, H, W) in {0, 1}."""
        with torch.no_grad():
            return masked_support_features(self.masking, self.extract, support_img, support_mask.float())

    def correlate(self, query_feats: list[torch.Tensor], support_feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """The 3-level correlation pyramid (no gradients: it has no parameters)."""
        with torch.no_grad():
            return multilayer_correlation(query_feats, support_feats, self.layout.stack_ids)

    def decode(self, corr_pyramid: list[torch.Tensor], size: tuple[int, int] | None) -> torch.Tensor:
        """Learner logits (B, 2, h, w), bilinearly resized to `size` unless it is None."""
        logits = self.hpn_learner(corr_pyramid)
        if size is not None:
            logits = F.interpolate(logits, size, mode="bilinear", align_corners=True)
        return logits

    # -- 1-shot forward and k-shot vote -------------------------------------------------------
    def forward(self, query_img: torch.Tensor, support_img: torch.Tensor, support_mask: torch.Tensor) -> torch.Tensor:
        """1-shot logits (B, 2, H, W) for query_img (B, 3, H, W), support_img (B, 3, H, W), support_mask (B, H, W).

        With `use_original_imgsize` the logits stay at the learner's size (the caller resizes).
        """
        query_feats = self.extract(query_img)
        support_feats = self.support_features(support_img, support_mask)
        corr = self.correlate(query_feats, support_feats)
        return self.decode(corr, None if self.use_original_imgsize else tuple(support_img.shape[-2:]))

    def predict_mask_nshot(
        self, query_img: torch.Tensor, support_imgs: torch.Tensor, support_masks: torch.Tensor,
        out_size: tuple[int, int] | None = None, supports_per_pass: int | None = None,
    ) -> torch.Tensor:
        """Predicted query mask (B, H, W) int64 in {0, 1} from k supports by HSNet's vote.

        query_img (B, 3, H, W); support_imgs (B, k, 3, H, W); support_masks (B, k, H, W).
        Each support gives a 1-shot argmax mask; a pixel is foreground when its vote count is
        >= 0.5 * max(1, the image's largest count). Unlike the reference (k full 1-shot passes),
        the query features are computed once and shared by all k supports.
        `out_size` (H, W): where to resize logits before the argmax (original-size evaluation).
        `supports_per_pass`: supports batched through backbone, correlation and learner at once
        (default: all k on a GPU; on the CPU as many as keep the batch's layer-2 correlation
        under `CPU_PASS_ELEMENTS`, since beyond the caches large batches only add memory traffic:
        measured at 400x400 one support per pass, at 128x128 all five at once are fastest).
        """
        bsz, shot = support_imgs.shape[:2]
        size = out_size if out_size is not None else tuple(query_img.shape[-2:])
        query_feats = self.extract(query_img)
        if supports_per_pass is None:
            supports_per_pass = shot
            if query_img.device.type == "cpu":
                # layer-2 correlation elements per support: n2 * (Ha * Wa) ** 2 per query
                per_support = bsz * self.layout.maps_per_level[2] * query_feats[0][0, 0].numel() ** 2
                supports_per_pass = max(1, min(shot, CPU_PASS_ELEMENTS // per_support))
        votes = torch.zeros(bsz, *size, dtype=torch.int64, device=query_img.device)
        for first in range(0, shot, supports_per_pass):
            n = min(supports_per_pass, shot - first)
            # Rows ordered query-major: support j of query b is row b * n + j.
            imgs = support_imgs[:, first:first + n].flatten(0, 1)
            masks = support_masks[:, first:first + n].flatten(0, 1)
            feats = [f.repeat_interleave(n, dim=0) for f in query_feats] if n > 1 else query_feats
            logits = self.decode(self.correlate(feats, self.support_features(imgs, masks)), size)
            votes += logits.argmax(dim=1).view(bsz, n, *size).sum(dim=1)
        if shot == 1:
            return votes
        max_vote = votes.view(bsz, -1).max(dim=1).values.clamp(min=1).view(bsz, 1, 1)
        return (votes.float() / max_vote >= 0.5).long()

    @staticmethod
    def compute_objective(logits: torch.Tensor, query_mask: torch.Tensor) -> torch.Tensor:
        """2-class cross-entropy of logits (B, 2, H, W) against query_mask (B, H, W); no ignore index."""
        return F.cross_entropy(logits.flatten(2), query_mask.flatten(1).long())

    def train_mode(self) -> "HSNet":
        """Train the learner while the frozen backbone stays in eval mode (BatchNorm fixed)."""
        self.train()
        self.backbone.eval()
        return self
