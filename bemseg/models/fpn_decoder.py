"""Semantic FPN decoder (Kirillov et al., Panoptic FPN), the paper's section 3.3 and Figure 3.

FPN neck: lateral 1x1 convolutions, a top-down pathway (nearest upsampling and addition) and 3x3
output convolutions, all with `neck_channels` (256) outputs. Head: per level, repeated
(3x3 conv + BatchNorm + ReLU + 2x bilinear upsampling) until stride 4, the levels summed, dropout
0.1 and a 1x1 convolution to the classes: logits at 1/4 of the input, upsampled by the caller.
This is mmsegmentation's FPN + FPNHead, which DenseCLIP (head 256 channels) and the Semantic FPN
baseline (head 128 channels) both use, initialised as there: neck convolutions Xavier-uniform
with zero bias (FPN's `init_cfg`), head convolutions as mmcv's ConvModule (Kaiming, fan_out), the
classifier N(0, 0.01) (bemseg/models/conv_module.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bemseg.models.conv_module import classifier, conv_module, xavier_conv


class FPNNeck(nn.Module):
    """Feature pyramid over levels with `in_channels`, all mapped to `out_channels`."""

    def __init__(self, in_channels: list[int], out_channels: int = 256) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(xavier_conv(c, out_channels, 1) for c in in_channels)
        self.output = nn.ModuleList(xavier_conv(out_channels, out_channels, 3) for _ in in_channels)

    def forward(self, levels: list[torch.Tensor]) -> list[torch.Tensor]:
        laterals = [conv(x) for conv, x in zip(self.lateral, levels)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[-2:],
                                                              mode="nearest")
        return [conv(x) for conv, x in zip(self.output, laterals)]


class FPNHead(nn.Module):
    """Upsample every pyramid level to the finest stride, sum, classify."""

    def __init__(self, num_classes: int, in_channels: int = 256, channels: int = 256,
                 strides: tuple[int, ...] = (4, 8, 16, 32), dropout: float = 0.1) -> None:
        super().__init__()
        self.scale_heads = nn.ModuleList()
        for stride in strides:
            steps = max(1, int(math.log2(stride) - math.log2(strides[0])))
            layers: list[nn.Module] = []
            for k in range(steps):
                layers.append(conv_module(in_channels if k == 0 else channels, channels, 3))
                if stride != strides[0]:
                    layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.scale_heads.append(nn.Sequential(*layers))
        self.classifier = classifier(channels, num_classes, dropout)

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        out = self.scale_heads[0](levels[0])
        for head, x in zip(self.scale_heads[1:], levels[1:]):
            y = head(x)
            if y.shape[-2:] != out.shape[-2:]:
                y = F.interpolate(y, size=out.shape[-2:], mode="bilinear", align_corners=False)
            out = out + y
        return self.classifier(out)


class SemanticFPNDecoder(nn.Module):
    """FPN neck + FPN head: four feature levels (strides 4-32) -> logits at stride 4."""

    def __init__(self, in_channels: list[int], num_classes: int, neck_channels: int = 256,
                 head_channels: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.neck = FPNNeck(in_channels, neck_channels)
        self.head = FPNHead(num_classes, neck_channels, head_channels, dropout=dropout)

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        return self.head(self.neck(levels))
