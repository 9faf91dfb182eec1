"""The 4D correlation pyramid between query and (masked) support feature maps."""

from __future__ import annotations

import torch

EPS = 1e-5  # added to the L2 norm, as in HSNet


def correlation(query_feat: torch.Tensor, support_feat: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every query position with every support position, clamped at 0.

    query_feat (B, C, Ha, Wa), support_feat (B, C, Hb, Wb) -> (B, Ha, Wa, Hb, Wb).
    """
    bsz, ch, ha, wa = query_feat.shape
    hb, wb = support_feat.shape[-2:]
    query = query_feat.reshape(bsz, ch, ha * wa)
    query = query / (query.norm(dim=1, p=2, keepdim=True) + EPS)
    support = support_feat.reshape(bsz, ch, hb * wb)
    support = support / (support.norm(dim=1, p=2, keepdim=True) + EPS)
    corr = torch.bmm(query.transpose(1, 2), support)  # (B, Ha*Wa, Hb*Wb)
    return corr.clamp_(min=0).view(bsz, ha, wa, hb, wb)


def multilayer_correlation(
    query_feats: list[torch.Tensor], support_feats: list[torch.Tensor], stack_ids: tuple[int, int, int]
) -> list[torch.Tensor]:
    """Correlations of matching maps, stacked per stage, deepest first.

    Returns [layer4 (B, n4, Ha4, Wa4, Hb4, Wb4), layer3 (B, n3, ...), layer2 (B, n2, ...)], where
    `stack_ids` = (n4, n4 + n3, n4 + n3 + n2) counts the maps from the deepest. The maps of one
    stage share their shape, so each stage is one batched product written straight into its
    stacked layout (the same numbers as correlating map by map and stacking, without the copy).
    """
    s4, s3, s2 = stack_ids
    levels = []
    for first, last in ((len(query_feats) - s4, len(query_feats)), (len(query_feats) - s3, len(query_feats) - s4),
                        (len(query_feats) - s2, len(query_feats) - s3)):
        query = torch.stack(query_feats[first:last], dim=1)  # (B, n, C, Ha, Wa)
        support = torch.stack(support_feats[first:last], dim=1)  # (B, n, C, Hb, Wb)
        bsz, n = query.shape[:2]
        corr = correlation(query.flatten(0, 1), support.flatten(0, 1))  # (B*n, Ha, Wa, Hb, Wb)
        levels.append(corr.view(bsz, n, *corr.shape[1:]))
    return levels
