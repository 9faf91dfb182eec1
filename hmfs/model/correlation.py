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
    return corr.clamp(min=0).view(bsz, ha, wa, hb, wb)


def multilayer_correlation(
    query_feats: list[torch.Tensor], support_feats: list[torch.Tensor], stack_ids: tuple[int, int, int]
) -> list[torch.Tensor]:
    """Correlations of matching maps, stacked per stage, deepest first.

    Returns [layer4 (B, n4, Ha4, Wa4, Hb4, Wb4), layer3 (B, n3, ...), layer2 (B, n2, ...)], where
    `stack_ids` = (n4, n4 + n3, n4 + n3 + n2) counts the maps from the deepest.
    """
    corrs = [correlation(q, s) for q, s in zip(query_feats, support_feats)]
    s4, s3, s2 = stack_ids
    levels = (corrs[-s4:], corrs[-s3:-s4], corrs[-s2:-s3])
    return [torch.stack(level, dim=1).contiguous() for level in levels]
