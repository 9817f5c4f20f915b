"""mmsegmentation's auxiliary FCN head: a second classifier on stage 3 that only adds a training loss.

As in pspnet_r50-d8 and deeplabv3plus_r50-d8: one 3x3 ConvModule 1024 -> 256, dropout 0.1, a 1x1
convolution to the classes; its loss has weight 0.4. The model calls it in training only, so it
costs nothing at inference and is absent from the FLOP count (its parameters are still the
model's, as in mmsegmentation's own parameter counts).
"""

from __future__ import annotations

import torch
from torch import nn

from bemseg.models.conv_module import classifier, conv_module

#: mmsegmentation's auxiliary loss weight.
AUX_WEIGHT = 0.4


class AuxHead(nn.Module):
    """FCN head with one 3x3 convolution: stage-3 features (B, C, h, w) -> logits (B, classes, h, w)."""

    def __init__(self, in_channels: int, num_classes: int, channels: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.conv = conv_module(in_channels, channels, 3)
        self.classifier = classifier(channels, num_classes, dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.conv(features))
