"""Label encodings: ISPRS colour codes and 0-is-no-data index masks, to class indices with 255 = ignore.

ISPRS labels are RGB colour codes; some real tiles were saved lossily (near-palette colours) or
use a wrong colour, so colours are decoded by thresholding each channel at 128 and the pixels
that were not exact are counted, never silently dropped. LoveDA masks and mmsegmentation's
converted annotations both use 0 = no-data/boundary and k = class k-1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bemseg.data.catalog import IGNORE_INDEX
from bemseg.errors import DataError

Palette = Sequence[tuple[int, int, int]]


@dataclass(frozen=True)
class LabelReport:
    """Pixels of one label image that were not exact palette colours."""

    #: decoded by threshold to a class (or black) although the exact colour is not a palette colour
    off_palette: int
    #: thresholded colour is neither a palette colour nor black (e.g. magenta): set to ignore
    undecodable: int


def _threshold_code(rgb: np.ndarray) -> np.ndarray:
    """3-bit code per pixel: bit 2 = red >= 128, bit 1 = green >= 128, bit 0 = blue >= 128."""
    return ((rgb[..., 0] >> 7) << 2) | ((rgb[..., 1] >> 7) << 1) | (rgb[..., 2] >> 7)


def _code_tables(palette: Palette) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per 3-bit code: class index (255 for black/undecodable), exact colour (8x3), decodable flag."""
    colours = np.asarray(palette, dtype=np.uint8)
    codes = _threshold_code(colours)
    if len(set(codes.tolist())) != len(codes) or 0 in codes:
        raise ValueError("palette colours must stay distinct and non-black after thresholding at 128")
    classes = np.full(8, IGNORE_INDEX, dtype=np.uint8)
    exact = np.zeros((8, 3), dtype=np.uint8)  # code 0 = black (0, 0, 0), the eroded boundary
    decodable = np.zeros(8, dtype=bool)
    decodable[0] = True
    classes[codes] = np.arange(len(colours), dtype=np.uint8)
    exact[codes] = colours
    decodable[codes] = True
    return classes, exact, decodable


def decode_rgb(rgb: np.ndarray, palette: Palette) -> tuple[np.ndarray, LabelReport]:
    """HxWx3 uint8 colour-coded label -> HxW uint8 class indices (black and undecodable -> 255)."""
    classes, exact, decodable = _code_tables(palette)
    code = _threshold_code(rgb)
    ok = decodable[code]
    inexact = rgb[..., 0] != exact[:, 0][code]
    for channel in (1, 2):
        inexact |= rgb[..., channel] != exact[:, channel][code]
    inexact &= ok
    report = LabelReport(off_palette=int(np.count_nonzero(inexact)),
                         undecodable=int(code.size - np.count_nonzero(ok)))
    return classes[code], report


def colorize(index: np.ndarray, palette: Palette) -> np.ndarray:
    """HxW class indices -> HxWx3 uint8 colour code; 255 (ignore) becomes black, as in ISPRS labels."""
    table = np.zeros((256, 3), dtype=np.uint8)
    table[: len(palette)] = np.asarray(palette, dtype=np.uint8)
    return table[index]


def decode_zero_ignore(mask: np.ndarray, num_classes: int, name: str) -> np.ndarray:
    """0 (no-data / boundary) -> 255 and k -> k-1; a value above `num_classes` is a DataError naming `name`."""
    if mask.ndim != 2:
        raise DataError(f"{name}: expected a single-channel index mask, found {mask.ndim} dimensions with "
                        f"shape {mask.shape}; re-download or re-convert it")
    top = int(mask.max(initial=0))
    if top > num_classes:
        raise DataError(f"{name}: mask value {top} is not a class (allowed 0 = no-data and 1..{num_classes}); "
                        "re-download the file")
    table = np.arange(-1, 255, dtype=np.int16).astype(np.uint8)  # 0 -> 255 (wraps), k -> k-1
    return table[mask]
