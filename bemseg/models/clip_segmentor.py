"""The BEMSeg model family: CLIP encoders, feature fusion, score map, losses, Semantic FPN.

One model class, `ClipSegmentor`, configured by `ClipSegConfig`; the paper's ablation (Tables 6
and 7) is four presets of it, and DenseCLIP (baselines/denseclip.py) a fifth:

| model           | text + prompts, score map, aux loss | fusion          | CPC |
| --------------- | ----------------------------------- | --------------- | --- |
| `clip_rn50_fpn` | no (CLIP trunk + FPN only)          | -               | no  |
| `clip_fpn`      | yes                                 | none            | no  |
| `bemseg_b`      | yes                                 | bidirectional   | no  |
| `bemseg_c`      | yes                                 | none            | yes |
| `bemseg`        | yes                                 | bidirectional   | yes |
| `denseclip`     | yes                                 | image_to_text   | no  |

Forward (Figure 1): trunk levels x1..x4 and dense embeddings (g, l); text features q from the
prompts; fusion gives (v, t); score map s = cos(v, t); the decoder sees [x1, x2, x3, cat(x4, s)].
Training losses: main CE, aux CE on s / tau (weight lambda1), CPC on s (weight lambda2).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from bemseg.errors import ModelError
from bemseg.models.aux_loss import score_map_aux_loss
from bemseg.models.base import SegmentationModel, build_config
from bemseg.models.bff import BidirectionalFeatureFusion
from bemseg.models.clip_image_encoder import ClipImageEncoder, resize_position_table
from bemseg.models.clip_text_encoder import ClipTextEncoder
from bemseg.models.cpc import cpc_loss
from bemseg.models.fpn_decoder import SemanticFPNDecoder
from bemseg.models.recipe import Recipe
from bemseg.models.score_map import pixel_text_score_map
from bemseg.models.seg_loss import seg_cross_entropy, upsample_to
from bemseg.models.weights import load_into, load_state_dict
from bemseg.registry import register_model

FUSIONS = ("none", "image_to_text", "text_to_image", "bidirectional")

#: The family's training recipe: the paper's section 4.1.3 on DenseCLIP's mmsegmentation 0.19 setup.
CLIP_RECIPE = Recipe(
    name="denseclip_adamw",
    source="BEMSeg section 4.1.3; DenseCLIP segmentation/configs/denseclip_fpn_res50_512x512_80k.py "
           "(mmseg 0.19, mmcv-full 1.3.17)",
    optimizer="adamw", lr=1e-4, weight_decay=1e-4, encoder_lr_mult=0.1, no_decay=("norm",),
    poly_power=0.9, min_lr=1e-6, warmup_iters=1500, warmup_ratio=1e-6, loss_reduction="all_pixels",
)


@dataclass
class ClipSegConfig:
    """Every switch of the family; each field can be overridden from a config's `model.options`."""

    text: bool = True  # text encoder, prompts, score map and auxiliary loss
    fusion: str = "none"  # none | image_to_text (DenseCLIP) | text_to_image | bidirectional (BFF)
    shared_decoder: bool = False  # BFF: one decoder for both directions (the public release)
    cpc: bool = False
    cpc_assign: str = "pred"  # pred (argmax of s, the paper) | label
    cpc_reduction: str = "mean"  # mean over pixels | sum (Eq. 6 literally)
    eta: float = 0.1  # CPC temperature
    lambda1: float = 0.4  # auxiliary loss weight (the public release used 0.5)
    lambda2: float = 0.2  # CPC weight
    tau: float = 0.07  # temperature of the score map in the auxiliary loss
    num_context: int = 8  # learnable prompt vectors
    name_length: int = 8  # tokens per class name, with its SOT and EOT
    quick_gelu: bool = True  # OpenAI's text tower uses QuickGELU
    fusion_width: int = 256
    fusion_heads: int = 4
    fusion_layers: int = 3
    fusion_dropout: float = 0.1
    gamma_init: float = 1e-4
    train_size: int = 512  # crop size the attention-pool position table is sized for
    decoder_channels: int = 256
    decoder_dropout: float = 0.1

    def __post_init__(self) -> None:
        checks = {
            "fusion": self.fusion in FUSIONS,
            "cpc_assign": self.cpc_assign in ("pred", "label"),
            "cpc_reduction": self.cpc_reduction in ("mean", "sum"),
            "lambda1": 0.0 <= self.lambda1 <= 1.0,
            "lambda2": 0.0 <= self.lambda2 <= 1.0,
            "eta": self.eta > 0,
            "tau": self.tau > 0,
            "train_size": self.train_size % 32 == 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ModelError(f"model option '{bad[0]}' has the invalid value {getattr(self, bad[0])!r}; "
                             "see bemseg.models.clip_segmentor.ClipSegConfig for allowed values")
        if not self.text and (self.fusion != "none" or self.cpc):
            raise ModelError("model options: fusion and cpc need the text branch (text: true)")


class ClipSegmentor(SegmentationModel):
    """CLIP RN50 image and text encoders, optional fusion and CPC, Semantic FPN decoder."""

    input_norm = "clip"
    recipe = CLIP_RECIPE

    def __init__(self, config: ClipSegConfig, num_classes: int, class_names: list[str]) -> None:
        super().__init__(num_classes, class_names)
        self.config = config
        self.image_encoder = ClipImageEncoder(dense=config.text, train_size=config.train_size)
        channels = list(self.image_encoder.out_channels)
        self.text_tower: ClipTextEncoder | None = None
        self._session_text: torch.Tensor | None = None  # text features cached by evaluation_session()
        self.fusion: BidirectionalFeatureFusion | None = None
        if config.text:
            self.text_tower = ClipTextEncoder(class_names, config.num_context, config.name_length,
                                              config.quick_gelu)
            channels[-1] += num_classes
            self.loss_weights["aux"] = config.lambda1
            if config.fusion != "none":
                self.fusion = BidirectionalFeatureFusion(
                    dim=self.image_encoder.embed_dim, width=config.fusion_width, heads=config.fusion_heads,
                    layers=config.fusion_layers, dropout=config.fusion_dropout, gamma_init=config.gamma_init,
                    image_branch=config.fusion in ("bidirectional", "text_to_image"),
                    text_branch=config.fusion in ("bidirectional", "image_to_text"),
                    shared_decoder=config.shared_decoder)
            if config.cpc:
                self.loss_weights["cpc"] = config.lambda2
        self.decoder = SemanticFPNDecoder(channels, num_classes, head_channels=config.decoder_channels,
                                          dropout=config.decoder_dropout)

    @property
    def encoder(self) -> ClipImageEncoder:
        return self.image_encoder

    @property
    def text_encoder(self) -> ClipTextEncoder | None:
        return self.text_tower

    @contextlib.contextmanager
    def evaluation_session(self) -> Iterator[None]:
        """Run the text encoder once for the whole session: its output does not depend on the image."""
        if self.text_tower is None:
            yield
            return
        with torch.no_grad():
            self._session_text = self.compute_text_features()
        try:
            yield
        finally:
            self._session_text = None

    def compute_text_features(self) -> torch.Tensor:
        """Class text features (C, D) before fusion: the prompts through the text encoder."""
        return self.text_tower()

    def _text_features(self) -> torch.Tensor:
        return self._session_text if self._session_text is not None else self.compute_text_features()

    def _features(self, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Decoder inputs [x1, x2, x3, cat(x4, s)] and the score map s (None without text)."""
        feats = self.image_encoder(images)
        levels = list(feats.levels)
        if self.text_tower is None:
            return levels, None
        text = self._text_features().unsqueeze(0).expand(images.shape[0], -1, -1)
        pixels = feats.local_embedding
        if self.fusion is not None:
            pixels, text = self.fusion(feats.global_embedding, pixels, text)
        scores = pixel_text_score_map(pixels, text)
        levels[-1] = torch.cat([levels[-1], scores.to(levels[-1].dtype)], dim=1)
        return levels, scores

    def forward_logits(self, images: torch.Tensor) -> torch.Tensor:
        levels, _ = self._features(images)
        return upsample_to(self.decoder(levels), images.shape[-2:])

    def forward_train(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        levels, scores = self._features(images)
        losses = {"main": seg_cross_entropy(self.decoder(levels), labels, self.loss_reduction)}
        if scores is not None:
            losses["aux"] = score_map_aux_loss(scores, labels, self.config.tau, self.loss_reduction)
            if self.config.cpc:
                small = F.interpolate(labels[:, None].float(), size=scores.shape[-2:], mode="nearest")
                losses["cpc"] = cpc_loss(scores, small[:, 0].long(), eta=self.config.eta,
                                         assign=self.config.cpc_assign, reduction=self.config.cpc_reduction)
        return losses

    def load_clip_weights(self, path: str | Path) -> None:
        """Load OpenAI or open_clip RN50 weights (image and text towers) from a local, verified file."""
        state = load_state_dict(path)
        visual = {k.removeprefix("visual."): v for k, v in state.items() if k.startswith("visual.")}
        if not visual:
            raise ModelError(f"weight file {path} has no 'visual.*' tensors: not a CLIP RN50 checkpoint")
        table = "attnpool.positional_embedding"
        if self.image_encoder.attnpool is None:
            visual = {k: v for k, v in visual.items() if not k.startswith("attnpool.")}
        elif table in visual:
            side = self.config.train_size // 32
            visual[table] = resize_position_table(visual[table].float(), side, side)
        load_into(self.image_encoder, visual, path, "CLIP RN50 image encoder")
        if self.text_tower is not None:
            tower_keys = set(self.text_tower.tower.state_dict())
            text = {k.removeprefix("text."): v for k, v in state.items() if not k.startswith("visual.")}
            load_into(self.text_tower.tower, {k: v for k, v in text.items() if k in tower_keys}, path,
                      "CLIP text encoder")
            missing = tower_keys - set(text)
            if missing:
                raise ModelError(f"weight file {path} lacks text-encoder tensors, e.g. {sorted(missing)[:2]}")
        self.weights = f"CLIP weights from {Path(path).name}"


def build_clip_segmentor(name: str, preset: dict[str, Any], num_classes: int, class_names: list[str],
                         pretrained: str | Path | None, overrides: dict[str, Any],
                         model_class: type[ClipSegmentor] = ClipSegmentor,
                         config_class: type[ClipSegConfig] = ClipSegConfig, **extra: Any) -> ClipSegmentor:
    """Build a family member (or a subclass, e.g. a variant) from its preset and user overrides.

    CLIP weights are loaded when `pretrained` names a file; `extra` goes to the model's constructor.
    """
    config = build_config(config_class, name, preset, overrides)
    model = model_class(config, num_classes, class_names, **extra)
    if pretrained is not None:
        model.load_clip_weights(pretrained)
    return model


@register_model(weights="clip")
def clip_rn50_fpn(num_classes: int, class_names: list[str], pretrained: str | None = None, **overrides: Any):
    """CLIP RN50 trunk + Semantic FPN, no text (DenseCLIP's "RN50-CLIP + FPN"; Table 3's complexity row)."""
    return build_clip_segmentor("clip_rn50_fpn", {"text": False}, num_classes, class_names, pretrained, overrides)


@register_model(weights="clip")
def clip_fpn(num_classes: int, class_names: list[str], pretrained: str | None = None, **overrides: Any):
    """Ablation baseline: CLIP image and text encoders, pixel-text alignment and auxiliary loss."""
    return build_clip_segmentor("clip_fpn", {}, num_classes, class_names, pretrained, overrides)


@register_model(weights="clip")
def bemseg_b(num_classes: int, class_names: list[str], pretrained: str | None = None, **overrides: Any):
    """BEMSeg-B: the baseline plus bidirectional feature fusion (BFF)."""
    return build_clip_segmentor("bemseg_b", {"fusion": "bidirectional"}, num_classes, class_names,
                                pretrained, overrides)


@register_model(weights="clip")
def bemseg_c(num_classes: int, class_names: list[str], pretrained: str | None = None, **overrides: Any):
    """BEMSeg-C: the baseline plus category-based pixel contrast (CPC)."""
    return build_clip_segmentor("bemseg_c", {"cpc": True}, num_classes, class_names, pretrained, overrides)


@register_model(weights="clip")
def bemseg(num_classes: int, class_names: list[str], pretrained: str | None = None, **overrides: Any):
    """BEMSeg: bidirectional feature fusion and enhanced alignment (BFF + CPC)."""
    return build_clip_segmentor("bemseg", {"fusion": "bidirectional", "cpc": True}, num_classes, class_names,
                                pretrained, overrides)
