"""mmsegmentation's training pipeline in numpy and torch (no OpenCV): resize, crop, flip, colour, normalise, pad.

The steps, their order and their parameters follow mmsegmentation's ISPRS and LoveDA configs:
RandomResize (ratio 0.5-2.0 of the dataset's scale, aspect kept), RandomCrop (cat_max_ratio
0.75), RandomFlip (p = 0.5), PhotoMetricDistortion (brightness, contrast, saturation, hue,
contrast first or last at random), Normalize (the encoder's mean and std), then Pad to the crop
size: the image with 0, which after normalisation is the mean colour, the mask with 255 (ignored).
Padding before normalising would put raw black, about -1.8 std, into every crop smaller than the
crop size. Every random draw comes from the generator passed in, so an item's augmentation
depends only on its seed. Colour conversions follow OpenCV's uint8 conventions (hue in [0, 180))
up to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from bemseg.data.catalog import IGNORE_INDEX
from bemseg.data.normalization import normalize


def resize(image: np.ndarray, mask: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear (half-pixel centres, no antialiasing, as OpenCV's INTER_LINEAR) image, nearest mask."""
    tensor = torch.from_numpy(np.require(image, requirements=("C", "W"))).permute(2, 0, 1)[None].float()
    tensor = F.interpolate(tensor, size=(height, width), mode="bilinear", align_corners=False)
    image = tensor[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    rows = np.minimum((np.arange(height) * (mask.shape[0] / height)).astype(np.intp), mask.shape[0] - 1)
    cols = np.minimum((np.arange(width) * (mask.shape[1] / width)).astype(np.intp), mask.shape[1] - 1)
    return image, mask[rows[:, None], cols[None, :]]


def random_resize(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, scale: int,
                  ratio_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Resize so the short side is `scale` times a ratio drawn uniformly from `ratio_range`."""
    ratio = rng.uniform(*ratio_range)
    factor = scale * ratio / min(mask.shape)
    height, width = (max(1, int(side * factor + 0.5)) for side in mask.shape)
    return resize(image, mask, height, width)


def random_crop(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, size: int,
                cat_max_ratio: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
    """A `size` crop (smaller sides kept whole); up to 10 redraws while one class covers >= cat_max_ratio."""

    def window() -> tuple[slice, slice]:
        top = int(rng.integers(0, max(mask.shape[0] - size, 0) + 1))
        left = int(rng.integers(0, max(mask.shape[1] - size, 0) + 1))
        return slice(top, top + size), slice(left, left + size)

    box = window()
    if cat_max_ratio < 1:
        for _ in range(10):
            labels, counts = np.unique(mask[box], return_counts=True)
            counts = counts[labels != IGNORE_INDEX]
            if len(counts) > 1 and counts.max() / counts.sum() < cat_max_ratio:
                break
            box = window()
    return image[box], mask[box]


def random_flip(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, prob: float = 0.5
                ) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal flip with probability `prob`."""
    if rng.random() < prob:
        return image[:, ::-1], mask[:, ::-1]
    return image, mask


def _convert(values: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
    """values * alpha + beta, clipped to 0..255 and truncated to uint8 (mmsegmentation's `convert`)."""
    return np.clip(values.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)


def rgb_to_hsv(image: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 HSV with OpenCV's 8-bit ranges: H in [0, 180), S and V in [0, 255]."""
    rgb = image.astype(np.float32)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    value = rgb.max(axis=-1)
    chroma = value - rgb.min(axis=-1)
    safe = np.where(chroma > 0, chroma, 1)
    hue = np.where(value == red, ((green - blue) / safe) % 6,
                   np.where(value == green, (blue - red) / safe + 2, (red - green) / safe + 4))
    hue = np.where(chroma > 0, hue * 30, 0)  # 60 degrees per sextant, halved
    saturation = np.where(value > 0, chroma / np.where(value > 0, value, 1) * 255, 0)
    return np.stack([hue, saturation, value], axis=-1).astype(np.float32)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """Inverse of `rgb_to_hsv`, rounded to uint8."""
    sextants = hsv[..., :1] / 30
    chroma = (hsv[..., 2] * hsv[..., 1] / 255)[..., None]
    k = (np.array([5, 3, 1], dtype=np.float32) + sextants) % 6
    rgb = hsv[..., 2:] - chroma * np.clip(np.minimum(k, 4 - k), 0, 1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def photometric_distortion(image: np.ndarray, rng: np.random.Generator, brightness_delta: float = 32,
                           contrast_range: tuple[float, float] = (0.5, 1.5),
                           saturation_range: tuple[float, float] = (0.5, 1.5), hue_delta: int = 18) -> np.ndarray:
    """mmsegmentation's PhotoMetricDistortion: each step applied with probability 1/2, contrast first or last."""

    def contrast(img: np.ndarray) -> np.ndarray:
        return _convert(img, alpha=rng.uniform(*contrast_range)) if rng.integers(2) else img

    if rng.integers(2):
        image = _convert(image, beta=rng.uniform(-brightness_delta, brightness_delta))
    contrast_first = bool(rng.integers(2))
    if contrast_first:
        image = contrast(image)
    if rng.integers(2):
        hsv = rgb_to_hsv(image)
        hsv[..., 1] = _convert(hsv[..., 1], alpha=rng.uniform(*saturation_range))
        image = hsv_to_rgb(hsv)
    if rng.integers(2):
        hsv = rgb_to_hsv(image)
        hsv[..., 0] = (np.rint(hsv[..., 0]) + rng.integers(-hue_delta, hue_delta)) % 180
        image = hsv_to_rgb(hsv)
    if not contrast_first:
        image = contrast(image)
    return image


def pad(image: torch.Tensor, mask: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad a normalised image (3, H, W) with 0 and its mask (H, W) with 255, bottom and right, up to `size`."""
    extra_h, extra_w = max(size - mask.shape[0], 0), max(size - mask.shape[1], 0)
    if not (extra_h or extra_w):
        return image, mask
    return (F.pad(image, (0, extra_w, 0, extra_h), value=0.0),
            F.pad(mask, (0, extra_w, 0, extra_h), value=IGNORE_INDEX))


@dataclass(frozen=True)
class TrainPipeline:
    """The training pipeline of one dataset, applied with an item's own generator.

    uint8 image (H, W, 3) and mask (H, W) in; normalised float32 image (3, crop, crop) and int64
    mask (crop, crop) out.
    """

    crop_size: int = 512
    resize_scale: int = 512
    ratio_range: tuple[float, float] = (0.5, 2.0)
    cat_max_ratio: float = 0.75
    flip_prob: float = 0.5
    norm: str = "clip"

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = random_resize(image, mask, rng, self.resize_scale, self.ratio_range)
        image, mask = random_crop(image, mask, rng, self.crop_size, self.cat_max_ratio)
        image, mask = random_flip(image, mask, rng, self.flip_prob)
        image = photometric_distortion(image, rng)
        return pad(normalize(image, self.norm), torch.from_numpy(mask.astype(np.int64)), self.crop_size)
