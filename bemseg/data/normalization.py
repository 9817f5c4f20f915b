"""Per-encoder image normalisation: CLIP's statistics for CLIP encoders, ImageNet's for the others."""

from __future__ import annotations

import numpy as np
import torch

#: Mean and std per RGB channel, on the 0-255 scale.
NORMS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "clip": ((122.770938, 116.7460125, 104.09373615), (68.5005327, 66.6321579, 70.32316305)),
    "imagenet": ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),
}


def normalize(image: np.ndarray, norm: str) -> torch.Tensor:
    """uint8 HxWx3 array -> float32 3xHxW tensor normalised with the statistics named by `norm`."""
    mean, std = NORMS[norm]
    tensor = torch.from_numpy(np.require(image, requirements=("C", "W"))).permute(2, 0, 1).float()
    return (tensor - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def denormalize(tensor: torch.Tensor, norm: str) -> np.ndarray:
    """Inverse of `normalize`: 3xHxW float tensor -> uint8 HxWx3 array (for figures)."""
    mean, std = NORMS[norm]
    image = tensor.detach().cpu().float() * torch.tensor(std).view(3, 1, 1) + torch.tensor(mean).view(3, 1, 1)
    return image.clamp(0, 255).round().byte().permute(1, 2, 0).numpy()
