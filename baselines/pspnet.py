"""PSPNet (Zhao et al., CVPR 2017) as the paper ran it: mmsegmentation's pspnet_r50-d8.

Encoder: ResNetV1c-50, stages 3 and 4 dilated (rates 2, 4), output stride 8. Pyramid pooling head
on stage 4 (2048 channels): for each pool scale (1, 2, 3, 6) adaptive average pooling, a 1x1
ConvModule to 512 and bilinear upsampling back; the input and the four branches concatenated
(2048 + 4 x 512), a 3x3 ConvModule to 512, dropout 0.1, a 1x1 classifier. Auxiliary FCN head on
stage 3 (loss weight 0.4), training only. As in mmsegmentation, the BatchNorm after the 1x1
pooled branch needs training batches of 2 or more.

`head: smp` builds segmentation-models-pytorch's `PSPNet` instead, which differs: it truncates the
encoder after stage 2 (output stride 8 by dropping stages 3 and 4, 512 channels) instead of
dilating; its branches reduce to 512/4 = 128 channels, the 1x1 pool without BatchNorm, upsampled
with align_corners=True; a 1x1 (not 3x3) bottleneck to 512, Dropout2d 0.2, a 3x3 classifier, and
no auxiliary head.
"""

from __future__ import annotations

from typing import Any

import segmentation_models_pytorch as smp
import torch
from torch import nn

from baselines.resnet_encoder import ENCODER_NAME
from baselines.resnet_segmentor import Architecture, build_resnet_segmentor
from bemseg.models.conv_module import classifier, conv_module
from bemseg.models.seg_loss import upsample_to
from bemseg.registry import register_model


class PSPHead(nn.Module):
    """Pyramid pooling module + 3x3 bottleneck + classifier over the last encoder stage."""

    def __init__(self, in_channels: int, num_classes: int, channels: int = 512,
                 pool_scales: tuple[int, ...] = (1, 2, 3, 6), dropout: float = 0.1) -> None:
        super().__init__()
        self.pools = nn.ModuleList(nn.Sequential(nn.AdaptiveAvgPool2d(scale), conv_module(in_channels, channels))
                                   for scale in pool_scales)
        self.bottleneck = conv_module(in_channels + len(pool_scales) * channels, channels, 3)
        self.classifier = classifier(channels, num_classes, dropout)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        pooled = [upsample_to(pool(x), x.shape[-2:]) for pool in self.pools]
        return self.classifier(self.bottleneck(torch.cat([x, *pooled], dim=1)))


PSPNET = Architecture(
    output_stride=8,
    mmseg_head=lambda channels, num_classes: PSPHead(channels[-1], num_classes),
    smp_model=lambda num_classes: smp.PSPNet(ENCODER_NAME, encoder_weights=None, classes=num_classes),
    aux=True,
)


@register_model(weights="imagenet")
def pspnet(num_classes: int, class_names: list[str], pretrained: str | None = None, **overrides: Any):
    """PSPNet on ResNetV1c-50 at output stride 8 with an auxiliary FCN head (mmseg pspnet_r50-d8)."""
    return build_resnet_segmentor("pspnet", PSPNET, num_classes, class_names, pretrained, overrides)
