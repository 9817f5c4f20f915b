"""Label decoding: ISPRS colour codes by threshold with counts, 0-is-no-data index masks."""

from __future__ import annotations

import numpy as np
import pytest

from bemseg.data.catalog import ISPRS_PALETTE, LOVEDA
from bemseg.data.labels import colorize, decode_rgb, decode_zero_ignore
from bemseg.errors import DataError


def test_every_palette_colour_black_and_near_colours_decode_exactly():
    pixels = [
        *ISPRS_PALETTE,          # classes 0..5, exact
        (0, 0, 0),               # eroded boundary -> ignore, exact
        (252, 255, 0),           # Potsdam 6_7's car colour -> car, off-palette
        (250, 250, 250),         # lossy white -> impervious, off-palette
        (3, 2, 250),             # lossy blue -> building, off-palette
        (10, 5, 0),              # lossy black -> ignore, off-palette
        (255, 0, 255),           # magenta: no class -> ignore, undecodable
        (200, 30, 220),          # near magenta -> undecodable too
    ]
    rgb = np.array(pixels, dtype=np.uint8).reshape(1, -1, 3)
    index, report = decode_rgb(rgb, ISPRS_PALETTE)
    assert index.dtype == np.uint8
    assert index[0].tolist() == [0, 1, 2, 3, 4, 5, 255, 4, 0, 1, 255, 255, 255]
    assert report.off_palette == 4
    assert report.undecodable == 2


def test_clean_label_reports_nothing_and_colorize_round_trips():
    rng = np.random.default_rng(0)
    index = rng.choice([0, 1, 2, 3, 4, 5, 255], size=(40, 50)).astype(np.uint8)
    rgb = colorize(index, ISPRS_PALETTE)
    assert rgb[index == 255].max() == 0
    decoded, report = decode_rgb(rgb, ISPRS_PALETTE)
    np.testing.assert_array_equal(decoded, index)
    assert (report.off_palette, report.undecodable) == (0, 0)


def test_zero_ignore_masks_shift_classes_down():
    mask = np.arange(8, dtype=np.uint8).reshape(2, 4)
    assert decode_zero_ignore(mask, LOVEDA.num_classes, "m.png").tolist() == [[255, 0, 1, 2], [3, 4, 5, 6]]


def test_zero_ignore_rejects_values_above_the_classes_naming_the_file():
    with pytest.raises(DataError, match=r"Val/Urban/masks_png/3514.png: mask value 9"):
        decode_zero_ignore(np.array([[1, 9]], dtype=np.uint8), 7, "Val/Urban/masks_png/3514.png")
