"""The pixel-text score map (Eq. 4): cosine similarity of every pixel embedding with every class text.

s = normalize(v) @ normalize(t)^T with shape (B, C, h, w), raw cosine (no temperature). It is
concatenated to the trunk's stage-4 features for the decoder, supervised by the auxiliary loss
(divided by tau there) and contrasted by CPC.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pixel_text_score_map(pixels: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
    """pixels (B, D, h, w), texts (B, C, D) -> cosine scores (B, C, h, w)."""
    return torch.einsum("bdhw,bcd->bchw", F.normalize(pixels, dim=1), F.normalize(texts, dim=2))
