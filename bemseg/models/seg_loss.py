"""Cross-entropy of logits against a label map, ignoring 255 (the main loss, Eq. 8).

Logits at a lower resolution are upsampled bilinearly to the label's size first, as
mmsegmentation does. A batch with no labelled pixel gives a zero that still backpropagates,
instead of the NaN a plain mean over nothing would give.
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


def seg_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Mean cross-entropy over labelled pixels of logits (B, C, h, w) against labels (B, H, W)."""
    logits = upsample_to(logits, labels.shape[-2:])
    if not bool((labels != ignore_index).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), labels, ignore_index=ignore_index)
