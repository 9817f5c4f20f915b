"""CLIP's ResNet-50 image encoder with DenseCLIP's dense attention pooling.

open_clip's `ModifiedResNet` (3-conv stem, anti-aliased downsampling, layers 3-4-6-3) is used as
is, so OpenAI and open_clip weights load by name. Its attention pool returns only the global
token and keeps CLIP's 7x7 position table; DenseCLIP instead runs the pool over every location
with the mean token prepended, keeping a table sized for the training crop ((512/32)^2 + 1 = 257
rows, counted in the paper's parameter totals) and resizing it bilinearly when another input size
comes (multi-scale testing). That forward is written here.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from open_clip.modified_resnet import ModifiedResNet

from bemseg.models.attention import attention


class ImageFeatures(NamedTuple):
    """The four trunk levels (strides 4, 8, 16, 32) and, with dense pooling, global and local embeddings."""

    levels: list[torch.Tensor]
    global_embedding: torch.Tensor | None  # (B, 1024)
    local_embedding: torch.Tensor | None  # (B, 1024, h, w)


def resize_position_table(table: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize a (1 + s*s, D) attention-pool position table to (1 + height*width, D), bilinearly."""
    side = math.isqrt(int(table.shape[0]) - 1)
    if (side, side) == (int(height), int(width)):
        return table
    grid = table[1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(height, width), mode="bilinear", align_corners=False)
    return torch.cat([table[:1], grid.permute(0, 2, 3, 1).reshape(height * width, -1)], dim=0)


class ClipImageEncoder(ModifiedResNet):
    """CLIP RN50 trunk; with `dense=True` also the dense attention pool (global + local embeddings)."""

    def __init__(self, dense: bool = True, train_size: int = 512, layers: tuple[int, ...] = (3, 4, 6, 3),
                 width: int = 64, output_dim: int = 1024) -> None:
        super().__init__(layers=list(layers), output_dim=output_dim, heads=width * 32 // 64,
                         image_size=train_size, width=width)
        if not dense:
            self.attnpool = None
        self.out_channels = [width * 4, width * 8, width * 16, width * 32]
        self.embed_dim = output_dim

    def dense_pool(self, x4: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention pool over all locations of x4 (B, 2048, h, w) -> global (B, D), local (B, D, h, w)."""
        pool = self.attnpool
        batch, _, height, width = x4.shape
        tokens = x4.flatten(2).transpose(1, 2)
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)
        tokens = tokens + resize_position_table(pool.positional_embedding, height, width).to(tokens.dtype)
        out = attention(pool.q_proj(tokens), pool.k_proj(tokens), pool.v_proj(tokens), pool.num_heads)
        out = pool.c_proj(out)
        local = out[:, 1:].transpose(1, 2).reshape(batch, -1, height, width)
        return out[:, 0], local

    def forward(self, x: torch.Tensor) -> ImageFeatures:
        x = self.stem(x)
        levels = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            levels.append(x)
        if self.attnpool is None:
            return ImageFeatures(levels, None, None)
        global_embedding, local_embedding = self.dense_pool(x)
        return ImageFeatures(levels, global_embedding, local_embedding)
