"""A null control for `compare_variants`: BEMSeg with its initial weights drawn from another random stream.

Same architecture, recipe and data order as `bemseg`; only the random draw of the weights it starts
from differs (and with it the dropout stream). Whatever separates it from the frozen `bemseg` runs is
noise, so a sound comparison reports no detectable difference on every dataset:

    snakemake --cores all compare_variants --config 'variants=[bemseg_reinit]'

With pretrained CLIP weights only the randomly initialised parts (fusion, decoder, prompt context)
start elsewhere; on the embedded default every weight does.
"""

from __future__ import annotations

from typing import Any

import torch

from bemseg.models.clip_segmentor import build_clip_segmentor
from bemseg.registry import register_model

#: Added to the run's seed to pick the other stream (any fixed number other than 0 would do).
STREAM_OFFSET = 104_729


@register_model(weights="clip")
def bemseg_reinit(num_classes: int, class_names: list[str], pretrained: str | None = None, **overrides: Any):
    """BEMSeg started from another random draw of its weights: a null control for compare_variants."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch.initial_seed() + STREAM_OFFSET)
        return build_clip_segmentor("bemseg_reinit", {"fusion": "bidirectional", "cpc": True}, num_classes,
                                    class_names, pretrained, overrides)
