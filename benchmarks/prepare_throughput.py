"""Throughput of `bemseg prepare` on one synthetic 6000x6000 Potsdam tile, against a bare reference.

The reference, measured in the same run on the same files, only reads the tile's two TIFFs from
their archives and writes the same number of image and label PNG patches (label: one band, no
decoding): the floor any converter pays. `prepare` adds label decoding and checking, pixel
counts, the archives' sha256 and its resumable bookkeeping. A second reference row writes
with Pillow's default PNG level (6) to show why prepare uses level 1.

    python benchmarks/prepare_throughput.py [--repeats 3] [--tile-size 6000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from bemseg.data.catalog import POTSDAM
from bemseg.data.imageio import PNG_LEVEL, write_png
from bemseg.data.prepare import prepare
from bemseg.data.sources import archive_path
from bemseg.data.synth import synthesize
from bemseg.data.tiling import windows

TILE = "2_10"
PATCH = 512


def _reference(raw: Path, out: Path, level: int) -> None:
    """Read the tile's image and label from their zips and write every patch of both, nothing else."""
    arrays = []
    for role in ("image", "label"):
        with zipfile.ZipFile(raw / POTSDAM.archives[role].filename) as archive:
            data = archive.read(archive_path(POTSDAM, role, TILE))
        arrays.append(np.asarray(Image.open(io.BytesIO(data))))
    image, label = arrays
    out.mkdir(parents=True)
    for x0, y0, x1, y1 in windows(*image.shape[:2], PATCH):
        write_png(out / f"img_{x0}_{y0}.png", image[y0:y1, x0:x1], level)
        write_png(out / f"ann_{x0}_{y0}.png", label[y0:y1, x0:x1, 0], level)


def _measure(run: Callable[[Path], object], folder: Path, repeats: int) -> tuple[float, float]:
    """Median seconds of `run` into fresh folders, and the MB of PNG it wrote."""
    times = []
    for n in range(repeats):
        start = time.perf_counter()
        run(folder / f"run{n}")
        times.append(time.perf_counter() - start)
    written = sum(p.stat().st_size for p in (folder / "run0").rglob("*.png"))
    return statistics.median(times), written / 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tile-size", type=int, default=6000)
    parser.add_argument("--workdir", type=Path, default=None, help="where temporary files go (default: system temp)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        raw = synthesize("potsdam", work / "raw", tiles=1, tile_size=args.tile_size)
        print(f"synthetic Potsdam, {args.tile_size}x{args.tile_size}, 1 train + 1 test tile: "
              f"{time.perf_counter() - start:.1f} s (not part of the table)")
        source_mb = 0.0
        for role in ("image", "label"):
            with zipfile.ZipFile(raw / POTSDAM.archives[role].filename) as archive:
                source_mb += archive.getinfo(archive_path(POTSDAM, role, TILE)).file_size / 1e6
        patches = len(windows(args.tile_size, args.tile_size, PATCH))

        rows = [
            (f"prepare (--only {TILE}, PNG level {PNG_LEVEL})",
             _measure(lambda out: prepare("potsdam", raw, out, only=[TILE]), work / "prepare", args.repeats)),
            (f"reference: read + write patches, level {PNG_LEVEL}",
             _measure(lambda out: _reference(raw, out, PNG_LEVEL), work / "ref", args.repeats)),
            ("reference: read + write patches, level 6",
             _measure(lambda out: _reference(raw, out, 6), work / "ref6", args.repeats)),
        ]
    reference = rows[1][1][0]
    print(f"{patches} patches of {PATCH}x{PATCH} (image + label each), {source_mb:.0f} MB of TIFF read, "
          f"median of {args.repeats} runs")
    print(f"{'':48s} {'seconds':>8s} {'patches/s':>10s} {'MB/s read':>10s} {'MB written':>11s} "
          f"{'x reference':>12s}")
    for name, (seconds, written) in rows:
        print(f"{name:48s} {seconds:8.2f} {patches / seconds:10.1f} {source_mb / seconds:10.1f} {written:11.1f} "
              f"{seconds / reference:12.2f}")


if __name__ == "__main__":
    main()
