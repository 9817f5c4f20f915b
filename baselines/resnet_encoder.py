"""ResNetV1c-50, the single-modal baselines' encoder, and its ImageNet weights from local files.

The paper's baselines use mmpretrain's ResNetV1c-50: ResNet-50 with the 7x7 stem replaced by a
deep stem of three 3x3 convolutions (32, 32, 64 channels) and strided 3x3 convolutions in the
bottlenecks. timm's `resnet50c` is the same network. It is built as segmentation-models-pytorch's
`tu-resnet50c` encoder (timm `features_only`), so the mmsegmentation-style heads and smp's own
models share one encoder class and one weight layout. `output_stride=8` dilates stages 3 and 4
(rates 2 and 4, the first block of each at half the rate), as mmsegmentation's `-d8` configs
(`contract_dilation=True`) do.

Weights come from three layouts, mapped onto timm's names:
- timm `resnet50c`: deep stem `conv1.{0,1,3,4,6}` + `bn1`, `layer*` (`fc.*` dropped); timm's
  `resnet50d` shares the stem names but average-pools in its shortcuts and does not fit;
- mmpretrain ResNetV1c: `backbone.stem.{0,1,2}.{conv,bn}`, `backbone.layer*` (`head.*` dropped);
- a single 7x7 stem (`conv1.weight`: torchvision, timm `resnet50`) does not fit and is refused.
"""

from __future__ import annotations

from pathlib import Path

import torch
from segmentation_models_pytorch.encoders import get_encoder
from segmentation_models_pytorch.encoders.timm_universal import TimmUniversalEncoder

from bemseg.errors import WeightsError
from bemseg.models.weights import load_into, load_state_dict

#: smp's name for timm's ResNet-50 with the deep (ResNetV1c) stem.
ENCODER_NAME = "tu-resnet50c"
#: smp encoders return [input, stem output, stage 1, ..., stage 4]: the index of stage 1.
FIRST_STAGE = 2

#: mmpretrain's deep-stem modules and their timm names.
_MMPRETRAIN_STEM = {"stem.0.conv": "conv1.0", "stem.0.bn": "conv1.1", "stem.1.conv": "conv1.3",
                    "stem.1.bn": "conv1.4", "stem.2.conv": "conv1.6", "stem.2.bn": "bn1"}


def resnet_encoder(output_stride: int = 32) -> TimmUniversalEncoder:
    """ResNetV1c-50 returning all four stages, randomly initialised (weights load separately)."""
    return get_encoder(ENCODER_NAME, in_channels=3, depth=5, weights=None, output_stride=output_stride)


def timm_layout(state: dict[str, torch.Tensor], path: str | Path) -> dict[str, torch.Tensor]:
    """Rename an mmpretrain or timm ResNetV1c state dict to timm's names, without classifier tensors."""
    if any(key.startswith("backbone.") for key in state):
        renamed = {}
        for key, value in state.items():
            if key.startswith("backbone."):
                module, _, leaf = key.removeprefix("backbone.").rpartition(".")
                renamed[f"{_MMPRETRAIN_STEM.get(module, module)}.{leaf}"] = value
        state = renamed
    if "conv1.weight" in state:
        side = state["conv1.weight"].shape[-1]
        raise WeightsError(f"weight file {path} has a single {side}x{side} stem convolution (torchvision-style "
                           "ResNet-50), but the baselines' encoder is ResNetV1c-50 with a deep 3-conv stem; use "
                           "mmpretrain's ResNetV1c-50 or timm's resnet50c weights")
    return {key: value for key, value in state.items() if not key.startswith("fc.")}


def load_resnet_weights(encoder: TimmUniversalEncoder, path: str | Path) -> None:
    """Load ImageNet weights from a verified local file into `encoder`, every tensor accounted for.

    Stages the encoder does not build (smp's PSPNet stops after stage 2) are skipped; BatchNorm
    step counters, which some publishers strip, keep the encoder's own values.
    """
    state = timm_layout(load_state_dict(path), path)
    built = {name for name, _ in encoder.model.named_children()}
    state = {k: v for k, v in state.items() if k.split(".")[0] in built or not k.startswith("layer")}
    own = encoder.model.state_dict()
    state.update({k: v for k, v in own.items() if k.endswith("num_batches_tracked") and k not in state})
    load_into(encoder.model, state, path, "ResNetV1c-50 encoder")
