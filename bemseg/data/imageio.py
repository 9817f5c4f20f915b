"""Reading and writing image files with Pillow, deterministically and with one-line errors.

Encoders write no timestamps, so the same array always gives the same bytes; the decoder turns
Pillow's many failure modes for a corrupt file into a DataError naming the file.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from bemseg.errors import DataError

#: PNG zlib level for prepared data: about 3.5x faster to write than Pillow's default 6, for
#: files slightly larger (benchmarks/prepare_throughput.py measures both).
PNG_LEVEL = 1


def decode_image(data: bytes, where: str, *, rgb: bool, remedy: str = "re-download it") -> np.ndarray:
    """Decode image bytes (read-only array): HxWx3 uint8 when `rgb`, else the single band as stored (HxW).

    An image with more than three bands (RGBA, or ISPRS's RGBIR) where an RGB one is expected is
    refused rather than silently cut to its first three: the protocol uses the 3-band images.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            bands = image.getbands()
            if rgb and len(bands) > 3:
                raise DataError(f"{where}: has {len(bands)} bands ({image.mode}) but the protocol uses 3-band "
                                "images (RGB; Vaihingen IRRG); give the dataset's 3-band files (Potsdam: "
                                "2_Ortho_RGB, not 4_Ortho_RGBIR)")
            if rgb and image.mode != "RGB":
                image = image.convert("RGB")
            array = np.asarray(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{where}: cannot decode the image ({exc}); the file is corrupt or truncated, "
                        f"{remedy}") from exc
    if not rgb and array.ndim != 2:
        raise DataError(f"{where}: expected a single-band index mask, found shape {array.shape}; {remedy}")
    return array


def read_image(path: str | os.PathLike[str], *, rgb: bool,
               remedy: str = "delete the prepared folder and run `bemseg prepare` again") -> np.ndarray:
    """Decode a prepared image file (see `decode_image`) into a writable array (torch rejects read-only ones)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror}); check that it exists") from exc
    return decode_image(data, str(path), rgb=rgb, remedy=remedy).copy()


def encode(array: np.ndarray, fmt: str) -> bytes:
    """Encode a uint8 HxW or HxWx3 array as PNG or (uncompressed) TIFF bytes, without timestamps."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format=fmt)
    return buffer.getvalue()


def write_png(path: str | os.PathLike[str], array: np.ndarray, level: int = PNG_LEVEL) -> None:
    """Write a uint8 array as PNG (mode L for HxW, RGB for HxWx3)."""
    Image.fromarray(np.ascontiguousarray(array)).save(path, format="PNG", compress_level=level)
