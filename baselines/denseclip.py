"""DenseCLIP (Rao et al., CVPR 2022) as the paper's Table 2 describes it.

Image and text features with pixel-text alignment (the ablation baseline `clip_fpn`: CLIP RN50
image encoder, frozen text encoder with learnable prompt context, score map concatenated to x4,
auxiliary loss on the score map, Semantic FPN decoder) plus image-to-text fusion: DenseCLIP's
context decoder (3 layers, width 256, 4 heads) lets the text features attend to the image's
global and local embeddings, t = q + gamma * decoder(q, [g; l]) with gamma initialised to 1e-4.
No text-to-image fusion and no contrastive loss. It is the BEMSeg family's `ClipSegmentor` with
`fusion: image_to_text`: every component is shared with BEMSeg.
"""

from __future__ import annotations

from typing import Any

from bemseg.models.clip_segmentor import build_clip_segmentor
from bemseg.registry import register_model


@register_model(weights="clip")
def denseclip(num_classes: int, class_names: list[str], pretrained: str | None = None, **overrides: Any):
    """DenseCLIP: the ablation baseline plus the image-to-text context decoder (Rao et al., CVPR 2022)."""
    return build_clip_segmentor("denseclip", {"fusion": "image_to_text"}, num_classes, class_names,
                                pretrained, overrides)
