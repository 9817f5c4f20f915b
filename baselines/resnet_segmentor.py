"""The single-modal baselines' model class: a ResNetV1c-50 encoder, a decode head, an optional aux head.

PSPNet, DeepLabV3+ and Semantic FPN differ only in their `Architecture`: the encoder's output
stride, the decode head mmsegmentation's config gives them (the paper's source, the default) and
segmentation-models-pytorch's own model (option `head: smp`), and whether mmsegmentation adds an
auxiliary FCN head on stage 3. Every decode head reads the encoder's feature list
[input, stem, stage 1, ..., stage 4] and returns logits at some stride; the model upsamples them
to the input size.

smp's models require inputs divisible by their encoder's output stride; to keep the eval contract
(logits at any input size) their inputs are zero-padded at the bottom and right and the logits
cropped back. mmsegmentation's heads resize internally and need no padding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.base import SegmentationModel as SmpModel
from segmentation_models_pytorch.encoders.timm_universal import TimmUniversalEncoder
from torch import nn

from baselines.aux_head import AUX_WEIGHT, AuxHead
from baselines.resnet_encoder import FIRST_STAGE, load_resnet_weights, resnet_encoder
from bemseg.errors import ModelError
from bemseg.models.base import SegmentationModel, build_config
from bemseg.models.recipe import Recipe
from bemseg.models.seg_loss import seg_cross_entropy, upsample_to

HEADS = ("mmseg", "smp")

#: mmsegmentation's recipe for pspnet_r50-d8, deeplabv3plus_r50-d8 and fpn_r50 at 512x512 over 80k iterations:
#: no parameter-wise settings, so every parameter (encoder and norms included) trains at lr with weight decay.
MMSEG_SGD_RECIPE = Recipe(
    name="mmseg_sgd",
    source="mmsegmentation 0.x configs/_base_/schedules/schedule_80k.py, used by pspnet_r50-d8_512x512_80k, "
           "deeplabv3plus_r50-d8_512x512_80k and sem_fpn/fpn_r50_512x512_80k",
    optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, encoder_lr_mult=1.0, no_decay=(),
    poly_power=0.9, min_lr=1e-4, warmup_iters=0, loss_reduction="all_pixels",
)
#: Index of stage 3 (1024 channels), the auxiliary head's input, in the encoder's feature list.
AUX_STAGE = FIRST_STAGE + 2


@dataclass
class ResNetSegConfig:
    """Options of the single-modal baselines, overridable from a config's `model.options`."""

    head: str = "mmseg"  # mmseg: the paper's source (mmsegmentation config) | smp: smp's own model
    aux_weight: float = AUX_WEIGHT  # FCN auxiliary head on stage 3 and its loss weight; 0 builds none

    def __post_init__(self) -> None:
        checks = {"head": self.head in HEADS, "aux_weight": 0.0 <= self.aux_weight <= 1.0}
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ModelError(f"model option '{bad[0]}' has the invalid value {getattr(self, bad[0])!r}; "
                             "see baselines.resnet_segmentor.ResNetSegConfig for allowed values")


@dataclass(frozen=True)
class Architecture:
    """What makes one baseline: encoder stride and decode head (mmseg), smp's model, mmseg's aux head."""

    output_stride: int
    mmseg_head: Callable[[list[int], int], nn.Module]  # (encoder channels, classes) -> decode head
    smp_model: Callable[[int], SmpModel]  # classes -> smp model on the tu-resnet50c encoder
    aux: bool  # mmsegmentation's config trains an auxiliary FCN head on stage 3


class SmpDecodeHead(nn.Module):
    """smp's decoder and segmentation head as one decode head over the encoder's feature list."""

    def __init__(self, model: SmpModel) -> None:
        super().__init__()
        self.decoder = model.decoder
        self.segmentation_head = model.segmentation_head

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.segmentation_head(self.decoder(features))


class ResNetSegmentor(SegmentationModel):
    """ImageNet ResNetV1c-50 encoder + decode head (+ auxiliary FCN head in training)."""

    input_norm = "imagenet"
    recipe = MMSEG_SGD_RECIPE

    def __init__(self, config: ResNetSegConfig, num_classes: int, class_names: list[str],
                 resnet: TimmUniversalEncoder, decode_head: nn.Module, input_multiple: int = 1) -> None:
        super().__init__(num_classes, class_names)
        self.config = config
        self.resnet = resnet
        self.decode_head = decode_head
        self.input_multiple = input_multiple
        self.aux_head: AuxHead | None = None
        if config.aux_weight > 0:
            self.aux_head = AuxHead(resnet.out_channels[AUX_STAGE], num_classes)
            self.loss_weights["aux"] = config.aux_weight

    @property
    def encoder(self) -> TimmUniversalEncoder:
        return self.resnet

    def _features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Encoder features of `images`, zero-padded to a multiple of `input_multiple` if needed."""
        if self.input_multiple > 1:
            height, width = self._padded_size(images)
            images = F.pad(images, (0, width - images.shape[-1], 0, height - images.shape[-2]))
        return self.resnet(images)

    def _padded_size(self, images: torch.Tensor) -> tuple[int, int]:
        """The input size rounded up to a multiple of `input_multiple`."""
        height, width = images.shape[-2:]
        return height + -height % self.input_multiple, width + -width % self.input_multiple

    def _at_input_size(self, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """Logits upsampled to the (padded) input size and cropped to the input."""
        if self.input_multiple == 1:
            return upsample_to(logits, images.shape[-2:])
        return upsample_to(logits, self._padded_size(images))[..., :images.shape[-2], :images.shape[-1]]

    def forward_logits(self, images: torch.Tensor) -> torch.Tensor:
        return self._at_input_size(self.decode_head(self._features(images)), images)

    def forward_train(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self._features(images)
        logits = self._at_input_size(self.decode_head(features), images)
        losses = {"main": seg_cross_entropy(logits, labels, self.loss_reduction)}
        if self.aux_head is not None:
            aux = self._at_input_size(self.aux_head(features[AUX_STAGE]), images)
            losses["aux"] = seg_cross_entropy(aux, labels, self.loss_reduction)
        return losses

    def load_imagenet_weights(self, path: str | Path) -> None:
        """Load ResNetV1c-50 ImageNet weights (timm or mmpretrain layout) from a local, verified file."""
        load_resnet_weights(self.resnet, path)
        self.weights = f"ImageNet weights from {Path(path).name}"


def build_resnet_segmentor(name: str, arch: Architecture, num_classes: int, class_names: list[str],
                           pretrained: str | Path | None, overrides: dict[str, Any]) -> ResNetSegmentor:
    """Build a baseline from its architecture and user overrides, loading ImageNet weights if given.

    The auxiliary head is on by default where the model's source has one: mmsegmentation's PSPNet
    and DeepLabV3+, not smp's models nor Semantic FPN.
    """
    preset = {"aux_weight": AUX_WEIGHT if arch.aux and overrides.get("head", "mmseg") == "mmseg" else 0.0}
    config = build_config(ResNetSegConfig, name, preset, overrides)
    if config.head == "mmseg":
        resnet = resnet_encoder(arch.output_stride)
        decode_head, multiple = arch.mmseg_head(resnet.out_channels, num_classes), 1
    else:
        smp_model = arch.smp_model(num_classes)
        resnet, decode_head, multiple = smp_model.encoder, SmpDecodeHead(smp_model), smp_model.encoder.output_stride
    if config.aux_weight > 0 and len(resnet.out_channels) <= AUX_STAGE:
        raise ModelError(f"model '{name}': option 'aux_weight' needs stage-3 features, which this encoder does "
                         "not compute (smp's PSPNet stops after stage 2); set aux_weight: 0")
    model = ResNetSegmentor(config, num_classes, class_names, resnet, decode_head, multiple)
    if pretrained is not None:
        model.load_imagenet_weights(pretrained)
    return model
