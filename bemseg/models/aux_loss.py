"""The auxiliary segmentation loss on the score map (Eq. 7).

The score map is a low-resolution prediction: cross-entropy of upsample(s / tau) with the label,
tau = 0.07 as DenseCLIP, bilinear upsampling, ignore 255, reduced like the main loss (DenseCLIP's
identity head uses the same mmsegmentation cross-entropy). Weighted by lambda1 in the total loss.
"""

from __future__ import annotations

import torch

from bemseg.models.seg_loss import seg_cross_entropy


def score_map_aux_loss(score_map: torch.Tensor, labels: torch.Tensor, tau: float = 0.07,
                       reduction: str = "all_pixels") -> torch.Tensor:
    """Cross-entropy of the temperature-scaled score map (B, C, h, w) against labels (B, H, W)."""
    return seg_cross_entropy(score_map / tau, labels, reduction)
