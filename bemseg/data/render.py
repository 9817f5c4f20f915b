"""Synthetic images from scene class maps: per-class colours and textures a network can learn.

Each class has four colour variants in four bands (red, green, blue, near-infrared), picked per
object by the scene's tone map, and its own texture: per-pixel grain, tree-crown blobs, field
stripes. A dataset's image takes three of the bands: RGB for Potsdam and LoveDA, near-infrared,
red, green (IRRG false colour, vegetation red) for Vaihingen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bemseg.data.scenes import smooth_noise

Colour4 = tuple[int, int, int, int]

#: Band order of the colours below, and the bands each dataset's images show.
BANDS = {"potsdam": (0, 1, 2), "vaihingen": (3, 0, 1), "loveda": (0, 1, 2)}


@dataclass(frozen=True)
class ClassLook:
    """Colour variants (R, G, B, NIR) and texture strengths of one class."""

    variants: tuple[Colour4, Colour4, Colour4, Colour4]
    grain: float = 6.0  # std of per-pixel noise
    crown: float = 0.0  # amplitude of small blobs (tree crowns)
    stripe: float = 0.0  # amplitude of field stripes


ISPRS_LOOK = {
    "impervious_surface": ClassLook(((150, 150, 150, 90), (165, 165, 162, 100), (128, 128, 132, 80),
                                     (178, 177, 174, 105)), grain=6, crown=4),
    "building": ClassLook(((172, 82, 62, 110), (112, 116, 130, 90), (84, 78, 78, 60), (214, 206, 192, 130)),
                          grain=4),
    "low_vegetation": ClassLook(((122, 152, 82, 190), (142, 162, 92, 180), (106, 136, 72, 200),
                                 (152, 156, 102, 172)), grain=10, crown=6),
    "tree": ClassLook(((52, 86, 46, 212), (62, 96, 52, 222), (40, 70, 40, 190), (72, 102, 56, 232)),
                      grain=8, crown=30),
    "car": ClassLook(((222, 222, 226, 150), (40, 40, 46, 30), (182, 32, 32, 60), (32, 52, 152, 40)), grain=3),
    "clutter": ClassLook(((142, 112, 82, 110), (100, 90, 80, 80), (162, 142, 112, 120), (92, 72, 62, 70)),
                         grain=20, crown=10),
}

LOVEDA_LOOK = {
    "background": ClassLook(((130, 135, 110, 0), (150, 145, 125, 0), (115, 125, 100, 0), (160, 160, 150, 0)),
                            grain=12, crown=6),
    "building": ClassLook(((190, 185, 180, 0), (150, 90, 80, 0), (110, 120, 140, 0), (210, 210, 215, 0)),
                          grain=5),
    "road": ClassLook(((140, 140, 140, 0), (160, 158, 150, 0), (120, 120, 125, 0), (175, 170, 165, 0)), grain=5),
    "water": ClassLook(((40, 60, 80, 0), (30, 55, 60, 0), (50, 75, 95, 0), (35, 45, 55, 0)), grain=2, crown=2),
    "barren": ClassLook(((185, 165, 135, 0), (200, 180, 150, 0), (170, 150, 120, 0), (210, 195, 170, 0)),
                        grain=12),
    "forest": ClassLook(((45, 75, 45, 0), (55, 85, 50, 0), (35, 65, 40, 0), (60, 90, 60, 0)), grain=8, crown=25),
    "agriculture": ClassLook(((150, 170, 90, 0), (175, 165, 110, 0), (120, 150, 70, 0), (190, 180, 130, 0)),
                             grain=6, stripe=18),
}


def render(rng: np.random.Generator, cls: np.ndarray, tone: np.ndarray, looks: dict[str, ClassLook],
           class_names: tuple[str, ...], bands: tuple[int, int, int]) -> np.ndarray:
    """HxWx3 uint8 image of a scene; pixels whose class is not in `class_names` (no-data) are black."""
    height, width = cls.shape
    side = min(height, width)
    colours = np.zeros((256 * 4, 3), dtype=np.float32)
    strength = np.zeros((3, 256), dtype=np.float32)  # grain, crown, stripe per class
    for i, name in enumerate(class_names):
        look = looks[name]
        colours[i * 4:i * 4 + 4] = np.asarray(look.variants, dtype=np.float32)[:, bands]
        strength[:, i] = look.grain, look.crown, look.stripe
    colours *= 1 + rng.normal(0.0, 0.04, 3).astype(np.float32)  # per-tile sensor and season shift

    texture = rng.standard_normal((height, width), dtype=np.float32)
    texture *= strength[0][cls]
    crown = smooth_noise(rng, (height, width), max(1.5, side * 0.004))
    crown -= 0.5
    crown *= 2 * strength[1][cls]
    texture += crown
    if strength[2].any():
        period = max(3.0, side * 0.012)
        wave_x = np.sin(np.arange(width, dtype=np.float32) * np.float32(2 * np.pi / period))
        wave_y = np.sin(np.arange(height, dtype=np.float32) * np.float32(2 * np.pi / period))
        texture += np.where(tone < 128, wave_x[None, :], wave_y[:, None]) * strength[2][cls]
    texture += (tone & 63).astype(np.float32) * 0.8 - 25  # continuous variation within an object
    light = smooth_noise(rng, (height, width), side / 3)
    light *= 0.16
    light += 0.92

    variant = cls.astype(np.uint16) * 4 + (tone >> 6)
    image = np.empty((height, width, 3), dtype=np.uint8)
    for band in range(3):
        value = colours[:, band][variant]
        value += texture
        value *= light
        np.clip(value, 0, 255, out=value)
        image[..., band] = value
    image[cls >= len(class_names)] = 0
    return image
