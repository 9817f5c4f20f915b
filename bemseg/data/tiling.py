"""Cutting big ISPRS tiles into training patches the way mmsegmentation's converter effectively does.

Per axis the windows start at 0, s, 2s, ... while the window still ends inside the image, plus
one window snapped to the far edge, so every pixel is covered and no window leaves the image.
With the default stride (= patch size) a 6000x6000 Potsdam tile gives 12x12 = 144 patches.
"""

from __future__ import annotations

import math

Window = tuple[int, int, int, int]  # x0, y0, x1, y1 (end exclusive)


def axis_starts(length: int, patch: int, stride: int) -> list[int]:
    """Window starts along one axis; a side shorter than `patch` gives the single start 0."""
    starts = list(range(0, max(length - patch, 0), stride))
    starts.append(max(length - patch, 0))
    return starts


def axis_count(length: int, patch: int, stride: int) -> int:
    """Number of windows along one axis: ceil(max(L - P, 0) / s) + 1."""
    return math.ceil(max(length - patch, 0) / stride) + 1


def windows(height: int, width: int, patch: int, stride: int | None = None) -> list[Window]:
    """All windows of a `height` x `width` image, row by row; sides are clipped to the image."""
    stride = stride or patch
    return [(x0, y0, min(x0 + patch, width), min(y0 + patch, height))
            for y0 in axis_starts(height, patch, stride) for x0 in axis_starts(width, patch, stride)]


def count_windows(height: int, width: int, patch: int, stride: int | None = None) -> int:
    """len(windows(...)) without listing them."""
    stride = stride or patch
    return axis_count(height, patch, stride) * axis_count(width, patch, stride)


def patch_name(tile_id: str, window: Window) -> str:
    """mmsegmentation's patch file name, e.g. `2_10_0_0_512_512.png` or `area1_0_0_512_512.png`."""
    x0, y0, x1, y1 = window
    return f"{tile_id}_{x0}_{y0}_{x1}_{y1}.png"
