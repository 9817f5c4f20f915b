"""CLIP's text encoder with learnable context prompts (CoOp-style, as DenseCLIP uses them).

The open_clip RN50 text tower is frozen (`requires_grad=False` on its weights) but is never run
under `no_grad`: gradients must flow through it into the learnable context vectors. Each class
prompt is [SOT, ctx_1..ctx_n, class-name tokens, EOT, pad], 16 tokens by default: the class name
is tokenised to 8 tokens with its own SOT and EOT, and the context is inserted after SOT. The
positional embedding is the first 16 rows of CLIP's 77, the causal mask 16x16, and the feature is
taken at the EOT position, then projected to 1024.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from open_clip import tokenize
from open_clip.transformer import QuickGELU, TextTransformer
from torch import nn

from bemseg.models.attention import attention

#: Seed of the random text tower used when no weights are given: frozen, so identical in every run.
RANDOM_TEXT_SEED = 0


def tokenize_class_names(class_names: list[str], length: int) -> torch.Tensor:
    """Token ids (C, length): SOT, the class name's words (underscores as spaces), EOT, padding."""
    return tokenize([name.replace("_", " ") for name in class_names], context_length=length)


class ClipTextEncoder(nn.Module):
    """Frozen CLIP text tower run over learnable-context prompts; returns text features (C, 1024)."""

    def __init__(self, class_names: list[str], num_context: int = 8, name_length: int = 8,
                 quick_gelu: bool = True, width: int = 512, heads: int = 8, layers: int = 12,
                 output_dim: int = 1024) -> None:
        super().__init__()
        # The frozen tower's random initialisation must not depend on the run's seed.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_TEXT_SEED)
            self.tower = TextTransformer(context_length=77, vocab_size=49408, width=width, heads=heads,
                                         layers=layers, output_dim=output_dim,
                                         act_layer=QuickGELU if quick_gelu else nn.GELU)
        self.tower.requires_grad_(False)
        self.heads = heads
        self.context = nn.Parameter(torch.empty(num_context, width))
        nn.init.trunc_normal_(self.context)
        self.register_buffer("tokens", tokenize_class_names(class_names, name_length), persistent=False)

    def _block(self, block: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """One open_clip residual block, with attention written as matmuls (counted by fvcore)."""
        y = block.ln_1(x)
        q, k, v = F.linear(y, block.attn.in_proj_weight, block.attn.in_proj_bias).chunk(3, dim=-1)
        y = block.attn.out_proj(attention(q, k, v, self.heads, mask))
        x = x + block.ls_1(y)
        return x + block.ls_2(block.mlp(block.ln_2(x)))

    def _encode(self, x: torch.Tensor, eot: torch.Tensor) -> torch.Tensor:
        """Token embeddings (N, L, width) -> features (N, output_dim) taken at the EOT positions."""
        tower = self.tower
        length = x.shape[1]
        mask = torch.full((length, length), float("-inf"), device=x.device, dtype=x.dtype).triu(1)
        x = x + tower.positional_embedding[:length]
        for block in tower.transformer.resblocks:
            x = self._block(block, x, mask)
        x = tower.ln_final(x)
        return x[torch.arange(x.shape[0], device=x.device), eot] @ tower.text_projection

    def encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Plain CLIP text features (N, output_dim) of token ids (N, L), e.g. descriptive sentences."""
        return self._encode(self.tower.token_embedding(tokens), tokens.argmax(dim=-1))

    def forward(self) -> torch.Tensor:
        """Features (C, output_dim) of the class prompts [SOT, context, class name, EOT]."""
        names = self.tower.token_embedding(self.tokens)
        context = self.context.unsqueeze(0).expand(names.shape[0], -1, -1)
        x = torch.cat([names[:, :1], context, names[:, 1:]], dim=1)
        return self._encode(x, self.tokens.argmax(dim=-1) + self.context.shape[0])
