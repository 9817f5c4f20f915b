"""DenseCLIP's context decoder: a stack of pre-norm transformer decoder layers with projections.

Queries attend to themselves, then to a memory, then pass an MLP, each with a residual
(x += SA(LN x); x += CA(LN x, memory); x += MLP(LN x)). Inputs of width `in_dim` are projected to
`width` (queries: LayerNorm + Linear; memory: LayerNorm + Linear + LayerNorm) and the result back
to `in_dim`. One decoder of width 256 with 3 layers has 3.95 M parameters: DenseCLIP uses one
(image context -> text), BEMSeg's BFF two (one per direction).
"""

from __future__ import annotations

import torch
from torch import nn

from bemseg.models.attention import MultiHeadAttention


class DecoderLayer(nn.Module):
    """Self-attention, cross-attention and MLP, each pre-normed with a residual."""

    def __init__(self, width: int, heads: int, dropout: float, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(width, heads, proj_drop=dropout)
        self.cross_attn = MultiHeadAttention(width, heads, proj_drop=dropout)
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)
        self.norm3 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, width * mlp_ratio), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(width * mlp_ratio, width))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.self_attn(y, y, y)
        x = x + self.cross_attn(self.norm2(x), memory, memory)
        return x + self.dropout(self.mlp(self.norm3(x)))


class ContextDecoder(nn.Module):
    """Update queries (B, Lq, in_dim) from a memory (B, Lm, in_dim); returns (B, Lq, in_dim)."""

    def __init__(self, in_dim: int = 1024, width: int = 256, heads: int = 4, layers: int = 3,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.memory_proj = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, width), nn.LayerNorm(width))
        self.query_proj = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, width))
        self.layers = nn.ModuleList(DecoderLayer(width, heads, dropout) for _ in range(layers))
        self.out_proj = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, in_dim))
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        memory = self.memory_proj(memory)
        x = self.query_proj(queries)
        for layer in self.layers:
            x = layer(x, memory)
        return self.out_proj(x)
