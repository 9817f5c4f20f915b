"""A positive control for `compare_variants`: BEMSeg whose Semantic FPN decoder stays at its initialisation.

Everything else trains as in `bemseg` (same recipe, data order and initial weights), but the
decoder's weights never change (its BatchNorm statistics still follow the data), so the model can
only adapt what feeds the random decoder. It is a deliberately crippled copy: a benchmark that can
tell models apart reports it significantly worse than `bemseg`:

    snakemake --cores all compare_variants --config 'variants=[bemseg_frozen_decoder]'
"""

from __future__ import annotations

from typing import Any

from bemseg.models.clip_segmentor import ClipSegConfig, ClipSegmentor, build_clip_segmentor
from bemseg.registry import register_model


class FrozenDecoderSegmentor(ClipSegmentor):
    """ClipSegmentor whose decoder parameters do not train (left out of the optimiser)."""

    def __init__(self, config: ClipSegConfig, num_classes: int, class_names: list[str]) -> None:
        super().__init__(config, num_classes, class_names)
        self.decoder.requires_grad_(False)


@register_model(weights="clip")
def bemseg_frozen_decoder(num_classes: int, class_names: list[str], pretrained: str | None = None,
                          **overrides: Any):
    """BEMSeg with its decoder frozen at initialisation: a crippled control for compare_variants."""
    return build_clip_segmentor("bemseg_frozen_decoder", {"fusion": "bidirectional", "cpc": True}, num_classes,
                                class_names, pretrained, overrides, model_class=FrozenDecoderSegmentor)
