"""Multi-head attention written as explicit matrix products.

fvcore does not count `scaled_dot_product_attention` or PyTorch's fused attention kernels, so
every attention in the suite goes through `attention()`: its FLOPs then appear in the paper's
complexity convention (measurement spec, "Complexity").
"""

from __future__ import annotations

import torch
from torch import nn


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_heads: int,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """Scaled dot-product attention over heads: q (B, Lq, D), k and v (B, Lk, D) -> (B, Lq, D).

    `mask` is added to the logits (e.g. -inf above the diagonal for causal text attention).
    """
    batch, len_q, dim = q.shape
    head_dim = dim // num_heads

    def heads(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(batch, x.shape[1], num_heads, head_dim).transpose(1, 2)

    logits = torch.matmul(heads(q) * head_dim ** -0.5, heads(k).transpose(-2, -1))
    if mask is not None:
        logits = logits + mask
    out = torch.matmul(logits.softmax(dim=-1), heads(v))
    return out.transpose(1, 2).reshape(batch, len_q, dim)


class MultiHeadAttention(nn.Module):
    """Attention with separate q/k/v projections and an output projection (DenseCLIP's layout)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = False, proj_drop: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim, bias=qkv_bias)
        self.k_proj = nn.Linear(dim, dim, bias=qkv_bias)
        self.v_proj = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        out = attention(self.q_proj(query), self.k_proj(key), self.v_proj(value), self.num_heads)
        return self.proj_drop(self.proj(out))
