"""Semantic FPN (Kirillov et al., CVPR 2019) as the paper ran it: mmsegmentation's fpn_r50.

Encoder: ResNetV1c-50 at output stride 32 (no dilation). Decoder: the suite's Semantic FPN
(bemseg.models.fpn_decoder), an FPN neck with 256 channels over the four stages and an FPN head
with 128 channels, dropout 0.1; logits at stride 4. No auxiliary head.

`head: smp` builds segmentation-models-pytorch's `FPN` instead, which differs: its neck has no 3x3
output convolutions (lateral 1x1 convolutions and the top-down sum only); its head blocks use
GroupNorm (32 groups) instead of BatchNorm and upsample with align_corners=True; Dropout2d 0.2.
"""

from __future__ import annotations

from typing import Any

import segmentation_models_pytorch as smp
import torch

from baselines.resnet_encoder import ENCODER_NAME, FIRST_STAGE
from baselines.resnet_segmentor import Architecture, build_resnet_segmentor
from bemseg.models.fpn_decoder import SemanticFPNDecoder
from bemseg.registry import register_model


class SemanticFPNHead(SemanticFPNDecoder):
    """The Semantic FPN decoder reading stages 1-4 from the encoder's feature list."""

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return super().forward(features[FIRST_STAGE:])


SEMANTIC_FPN = Architecture(
    output_stride=32,
    mmseg_head=lambda channels, num_classes: SemanticFPNHead(channels[FIRST_STAGE:], num_classes,
                                                             head_channels=128),
    smp_model=lambda num_classes: smp.FPN(ENCODER_NAME, encoder_weights=None, classes=num_classes),
    aux=False,
)


@register_model(weights="imagenet")
def semantic_fpn(num_classes: int, class_names: list[str], pretrained: str | None = None, **overrides: Any):
    """Semantic FPN on ResNetV1c-50 (stride 32), FPN neck 256 and head 128 channels (mmseg fpn_r50)."""
    return build_resnet_segmentor("semantic_fpn", SEMANTIC_FPN, num_classes, class_names, pretrained, overrides)
