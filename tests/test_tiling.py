"""Patch windows: mmsegmentation's effective counts and names, full coverage, nothing outside the image."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bemseg.data.tiling import count_windows, patch_name, windows


def _mmseg_boxes(height: int, width: int, clip: int, stride: int) -> set[tuple[int, int, int, int]]:
    """The distinct boxes of mmsegmentation's converter: starts are multiples of the clip size (its
    stride only sets how many), the ones past the edge pulled back to end at the edge."""

    def starts(length: int) -> list[int]:
        n = math.ceil((length - clip) / stride)
        n = n if n * stride + clip >= length else n + 1
        return [k * clip if k * clip + clip <= length else length - clip for k in range(n + 1)]

    return {(x, y, min(x + clip, width), min(y + clip, height)) for y in starts(height) for x in starts(width)}


def test_a_potsdam_tile_gives_144_patches_without_writing_it():
    assert count_windows(6000, 6000, 512) == 144
    boxes = windows(6000, 6000, 512)
    assert len(boxes) == 144
    assert boxes[11] == (5488, 0, 6000, 512)
    assert boxes[-1] == (5488, 5488, 6000, 6000)


@pytest.mark.parametrize("size", [(2494, 2064), (2557, 1887), (2566, 1893), (1783, 2995), (1995, 1996),
                                  (2550, 3816), (2555, 1388), (1024, 1024), (1025, 513)])
def test_counts_match_mmsegmentations_converter_for_vaihingen_like_sizes(size):
    height, width = size
    ours = windows(height, width, 512)
    assert len(ours) == len(set(ours)) == count_windows(height, width, 512)
    assert set(ours) == _mmseg_boxes(height, width, 512, 256)  # its default stride, ignored by its bug
    assert count_windows(height, width, 512) == (math.ceil((height - 512) / 512) + 1) * (
        math.ceil((width - 512) / 512) + 1)


@pytest.mark.parametrize(("height", "width", "patch", "stride"),
                         [(700, 1300, 512, 512), (700, 1300, 256, 170), (300, 200, 512, None), (512, 512, 512, 100)])
def test_windows_cover_every_pixel_and_stay_inside(height, width, patch, stride):
    covered = np.zeros((height, width), dtype=int)
    for x0, y0, x1, y1 in windows(height, width, patch, stride):
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        assert (x1 - x0, y1 - y0) == (min(patch, width), min(patch, height))
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1
    assert len(windows(height, width, patch, stride)) == count_windows(height, width, patch, stride)


def test_overlapping_stride_adds_windows():
    assert count_windows(6000, 6000, 512, 256) == (math.ceil(5488 / 256) + 1) ** 2
    assert count_windows(300, 200, 512) == 1


def test_patch_names_follow_mmsegmentation():
    assert patch_name("2_10", (0, 0, 512, 512)) == "2_10_0_0_512_512.png"
    assert patch_name("area1", (1407, 512, 1919, 1024)) == "area1_1407_512_1919_1024.png"
