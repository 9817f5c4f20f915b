"""DeepLabV3+ (Chen et al., ECCV 2018) as the paper ran it: mmsegmentation's deeplabv3plus_r50-d8.

Encoder: ResNetV1c-50, stages 3 and 4 dilated (rates 2, 4), output stride 8. Depthwise-separable
ASPP head on stage 4 (2048 channels): an image-pooling branch (global average pooling, 1x1
ConvModule to 512, upsampled back), a 1x1 ConvModule (rate 1) and depthwise-separable 3x3
ConvModules at rates 12, 24 and 36, all to 512; the five concatenated and fused by a 3x3
ConvModule to 512. Decoder: stage 1 (256 channels, stride 4) projected to 48 channels by a 1x1
ConvModule, the ASPP output resized to it and concatenated, two depthwise-separable 3x3
ConvModules to 512, dropout 0.1, a 1x1 classifier. Every ConvModule is conv (no bias) + BatchNorm
+ ReLU, the separable ones with BatchNorm and ReLU after both the depthwise and the pointwise
convolution. Auxiliary FCN head on stage 3 (loss weight 0.4), training only. As in
mmsegmentation, the BatchNorm after the 1x1 pooled branch needs training batches of 2 or more.

`head: smp` builds segmentation-models-pytorch's `DeepLabV3Plus` instead, which differs: output
stride 16 (only stage 4 dilated), 256 channels; its separable convolutions have one BatchNorm and
ReLU after the pointwise convolution only; the ASPP fusion is a 1x1 convolution with dropout 0.5
followed by one more separable 3x3 convolution; the decoder has one separable 3x3 convolution
(not two), upsamples with align_corners=True, and there is no auxiliary head.
"""

from __future__ import annotations

from typing import Any

import segmentation_models_pytorch as smp
import torch
from torch import nn

from baselines.resnet_encoder import ENCODER_NAME, FIRST_STAGE
from baselines.resnet_segmentor import Architecture, build_resnet_segmentor
from bemseg.models.conv_module import classifier, conv_module, separable_conv_module
from bemseg.models.seg_loss import upsample_to
from bemseg.registry import register_model


class SeparableASPPHead(nn.Module):
    """Depthwise-separable ASPP over stage 4, fused with stage 1 features: logits at stride 4."""

    def __init__(self, in_channels: int, c1_in_channels: int, num_classes: int, channels: int = 512,
                 dilations: tuple[int, ...] = (1, 12, 24, 36), c1_channels: int = 48, dropout: float = 0.1) -> None:
        super().__init__()
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv_module(in_channels, channels))
        self.aspp = nn.ModuleList(conv_module(in_channels, channels) if rate == 1
                                  else separable_conv_module(in_channels, channels, rate) for rate in dilations)
        self.bottleneck = conv_module((len(dilations) + 1) * channels, channels, 3)
        self.c1_bottleneck = conv_module(c1_in_channels, c1_channels)
        self.sep_bottleneck = nn.Sequential(separable_conv_module(channels + c1_channels, channels),
                                            separable_conv_module(channels, channels))
        self.classifier = classifier(channels, num_classes, dropout)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x, c1 = features[-1], self.c1_bottleneck(features[FIRST_STAGE])
        branches = [upsample_to(self.image_pool(x), x.shape[-2:])] + [branch(x) for branch in self.aspp]
        aspp = upsample_to(self.bottleneck(torch.cat(branches, dim=1)), c1.shape[-2:])
        return self.classifier(self.sep_bottleneck(torch.cat([aspp, c1], dim=1)))


DEEPLABV3PLUS = Architecture(
    output_stride=8,
    mmseg_head=lambda channels, num_classes: SeparableASPPHead(channels[-1], channels[FIRST_STAGE], num_classes),
    smp_model=lambda num_classes: smp.DeepLabV3Plus(ENCODER_NAME, encoder_weights=None, classes=num_classes),
    aux=True,
)


@register_model(weights="imagenet")
def deeplabv3plus(num_classes: int, class_names: list[str], pretrained: str | None = None, **overrides: Any):
    """DeepLabV3+ on ResNetV1c-50 at output stride 8 with an auxiliary FCN head (mmseg deeplabv3plus_r50-d8)."""
    return build_resnet_segmentor("deeplabv3plus", DEEPLABV3PLUS, num_classes, class_names, pretrained, overrides)
