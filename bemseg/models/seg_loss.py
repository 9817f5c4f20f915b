"""Cross-entropy of logits against a label map, ignoring 255 (the main loss, Eq. 8).

Logits at a lower resolution are upsampled bilinearly to the label's size first, as
mmsegmentation does. Two reductions (the recipe's `loss_reduction`, bemseg/models/recipe.py):
`all_pixels` divides the summed loss by every pixel of the batch, ignored ones counting as zero
(mmsegmentation 0.x's `CrossEntropyLoss`, the reference); `labelled_pixels` divides by the
labelled pixels only (`avg_non_ignore=True`). Both give zero, not NaN, for a batch without labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bemseg.data.catalog import IGNORE_INDEX


def upsample_to(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (align_corners False) of (B, C, h, w) logits to `size`, if it differs."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def seg_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "all_pixels",
                      ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Cross-entropy of logits (B, C, h, w) against labels (B, H, W), reduced as `reduction` says."""
    logits = upsample_to(logits, labels.shape[-2:])
    per_pixel = F.cross_entropy(logits.float(), labels, ignore_index=ignore_index, reduction="none")
    if reduction == "all_pixels":
        return per_pixel.mean()
    if reduction == "labelled_pixels":
        return per_pixel.sum() / (labels != ignore_index).sum().clamp(min=1)
    raise ValueError(f"unknown loss reduction '{reduction}'; allowed: all_pixels, labelled_pixels")
