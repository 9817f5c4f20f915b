"""Bidirectional feature fusion (BFF), the paper's section 3.1 and Figure 2b.

Two branches, each a context decoder (self-attention, cross-attention, MLP; 3 layers, width 256):
- image branch: queries = the h*w local image tokens, memory = the C text features -> x4_post;
- text branch: queries = the C text features, memory = [global token; local tokens] -> q_post.
Residuals with learnable per-channel scales initialised to 1e-4 (Eq. 3):
v = l + gamma1 * x4_post, t = q + gamma2 * q_post.

With only the text branch this is DenseCLIP's image-to-text context decoder, which is how the
DenseCLIP baseline is built from the same parts; with only the image branch it is the suite's
reading of SegCLIP's cross-modal feature fusion (variants/segclip.py). `shared_decoder=True` reuses one decoder for both
directions (the authors' public release); the default, two decoders, is the reading that matches
the paper's 54.12 M parameters (spec/model.md).
"""

from __future__ import annotations

import torch
from torch import nn

from bemseg.models.context_decoder import ContextDecoder


class BidirectionalFeatureFusion(nn.Module):
    """Fuse local image embeddings l (B, D, h, w) and text features q (B, C, D) both ways."""

    def __init__(self, dim: int = 1024, width: int = 256, heads: int = 4, layers: int = 3,
                 dropout: float = 0.1, gamma_init: float = 1e-4, image_branch: bool = True,
                 text_branch: bool = True, shared_decoder: bool = False) -> None:
        super().__init__()
        if not (image_branch or text_branch):
            raise ValueError("feature fusion needs at least one branch")
        count = 1 if shared_decoder or not (image_branch and text_branch) else 2
        self.decoders = nn.ModuleList(ContextDecoder(dim, width, heads, layers, dropout) for _ in range(count))
        self.image_branch = image_branch
        self.text_branch = text_branch
        self.gamma_image = nn.Parameter(torch.full((dim,), gamma_init)) if image_branch else None
        self.gamma_text = nn.Parameter(torch.full((dim,), gamma_init)) if text_branch else None

    def forward(self, global_embedding: torch.Tensor, local_embedding: torch.Tensor,
                text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (v, t): fused local embeddings (B, D, h, w) and fused text features (B, C, D)."""
        batch, dim, height, width = local_embedding.shape
        tokens = local_embedding.flatten(2).transpose(1, 2)
        v, t = local_embedding, text
        if self.image_branch:
            x4_post = self.decoders[0](tokens, text)
            v = (tokens + self.gamma_image * x4_post).transpose(1, 2).reshape(batch, dim, height, width)
        if self.text_branch:
            memory = torch.cat([global_embedding.unsqueeze(1), tokens], dim=1)
            t = text + self.gamma_text * self.decoders[-1](text, memory)
        return v, t
