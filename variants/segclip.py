"""SegCLIP (Zhang et al., IEEE TGRS 62:5646316, 2024), built from its abstract as a suite variant.

The abstract names three parts; the full paper is not at hand, so each open choice below is this
suite's own reading, stated so that it can be checked and changed:

1. "Prompting based on linguistic descriptions, CLIP adapted to extract text information":
   class prompts [SOT, learnable context, class name, EOT] through the frozen CLIP text encoder,
   exactly as in BEMSeg (bemseg/models/clip_text_encoder.py).
2. "Additional real text used to refine ambiguous query features": the class prompt features are
   the queries; the "real text" is a set of descriptive sentences per class, written as data in
   `variants/descriptions/DATASET.yaml` (two per class) and encoded once per forward by the same
   frozen text encoder without context. A context decoder (queries = prompt features, memory =
   sentence features; 1 layer, width 256) refines the queries with a residual scaled by a
   learnable gamma initialised to 1e-4: t = q + gamma_refine * refine(q, sentences).
3. "Cross-modal feature fusion (CFF) integrating linguistic and visual features": cross-attention
   from the local visual tokens to the refined class texts (the image branch of BEMSeg's fusion
   module, `fusion: text_to_image`): v = l + gamma * CFF(l, t).
Then, as in DenseCLIP and BEMSeg: score map s = cos(v, t) concatenated to the stage-4 features,
Semantic FPN decoder, main loss plus the auxiliary loss on s / tau (weight lambda1). No CPC.

Sentences for a class the dataset's file lacks (or when the dataset is unknown) fall back to two
generic templates. Options beyond the family's: `description_length` (tokens per sentence),
`refine_layers`, `descriptions` (a YAML file to use instead of the dataset's).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from open_clip import tokenize
from torch import nn

from bemseg.errors import ModelError
from bemseg.models.clip_segmentor import ClipSegConfig, ClipSegmentor, build_clip_segmentor
from bemseg.models.context_decoder import ContextDecoder
from bemseg.registry import register_model

DESCRIPTIONS = Path(__file__).resolve().parent / "descriptions"
FALLBACK = ("a remote sensing image of {}", "an aerial photograph showing {}")


@dataclass
class SegClipConfig(ClipSegConfig):
    """The family's options plus SegCLIP's real-text refinement."""

    description_length: int = 32
    refine_layers: int = 1
    descriptions: str | None = None


def class_descriptions(class_names: list[str], dataset: str | None, path: str | None) -> list[list[str]]:
    """Sentences per class from `path`, else `variants/descriptions/DATASET.yaml`, else the templates."""
    source = Path(path) if path else (DESCRIPTIONS / f"{dataset}.yaml" if dataset else None)
    table: dict[str, Any] = {}
    if source is not None and (path or source.is_file()):
        try:
            table = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ModelError(f"{source}: cannot read the class descriptions ({exc})") from exc
        if not isinstance(table, dict):
            raise ModelError(f"{source}: expected a mapping of class name to a list of sentences")
    sentences = []
    for name in class_names:
        found = table.get(name) or [template.format(name.replace("_", " ")) for template in FALLBACK]
        sentences.append([str(s) for s in found][: len(FALLBACK)])
    if len({len(s) for s in sentences}) != 1:
        raise ModelError(f"{source}: give every class the same number of sentences ({len(FALLBACK)})")
    return sentences


class SegClip(ClipSegmentor):
    """BEMSeg's CLIP encoders and decoder with real-text query refinement and cross-modal fusion."""

    def __init__(self, config: SegClipConfig, num_classes: int, class_names: list[str],
                 dataset: str | None = None) -> None:
        super().__init__(config, num_classes, class_names)
        sentences = class_descriptions(class_names, dataset, config.descriptions)
        flat = [s for per_class in sentences for s in per_class]
        self.register_buffer("description_tokens", tokenize(flat, context_length=config.description_length),
                             persistent=False)
        self.refiner = ContextDecoder(self.image_encoder.embed_dim, config.fusion_width, config.fusion_heads,
                                      config.refine_layers, config.fusion_dropout)
        self.gamma_refine = nn.Parameter(torch.full((self.image_encoder.embed_dim,), config.gamma_init))

    def compute_text_features(self) -> torch.Tensor:
        """Prompt features refined by the (frozen, input-independent) features of the class sentences."""
        queries = self.text_tower()
        with torch.no_grad():
            sentences = self.text_tower.encode_tokens(self.description_tokens)
        refined = self.refiner(queries.unsqueeze(0), sentences.unsqueeze(0)).squeeze(0)
        return queries + self.gamma_refine * refined


@register_model(weights="clip")
def segclip(num_classes: int, class_names: list[str], pretrained: str | None = None, dataset: str | None = None,
            **overrides: Any):
    """SegCLIP: description prompts, real-text query refinement and cross-modal feature fusion (from its abstract)."""
    return build_clip_segmentor("segclip", {"fusion": "text_to_image"}, num_classes, class_names, pretrained,
                                overrides, model_class=SegClip, config_class=SegClipConfig, dataset=dataset)
