"""Training images per second per data-loader worker at 512x512 with the full augmentation, against a GPU's need.

One BEMSeg run of 80,000 iterations at batch 4 in one hour needs 80,000 x 4 / 3,600 = 88.9 images
per second from its loader: the rate a GPU that fast would consume. This measures what the suite's
training pipeline delivers: a synthetic Potsdam dataset prepared into 512x512 patches, read through
`bemseg.data.build_dataset(..., augment=True)` and indexed as `dataset[index, seed]` as training
does (random resize to 0.5-2.0 of the dataset's scale, crop with cat_max_ratio, flip, photometric
distortion, normalisation), in a torch DataLoader with 1 and 2 workers, batch 4. After a warm-up,
the median over repeats of a fixed number of batches; from it the workers one such GPU needs.

    python benchmarks/data_loader.py [--workers 1 2] [--batches 20] [--repeats 5] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Sampler

from bemseg.data import build_dataset
from bemseg.data.prepare import prepare
from bemseg.data.synth import synthesize
from bemseg.provenance import device_name

CROP, BATCH = 512, 4
#: Images per second one BEMSeg run of 80k iterations at batch 4 consumes if it takes one hour.
NEEDED = 80_000 * BATCH / 3600


class Keys(Sampler[list[tuple[int, int]]]):
    """Endless batches of (index, seed) keys, as training's sampler yields them."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        position = 0
        while True:
            yield [((position + i) % self.size, position + i) for i in range(BATCH)]
            position += BATCH


def images_per_second(dataset, workers: int, batches: int, repeats: int) -> float:
    """Median images/s of `repeats` windows of `batches` batches, after a warm-up of 2 batches per worker."""
    loader = DataLoader(dataset, batch_sampler=Keys(len(dataset)), num_workers=workers)
    stream = iter(loader)
    for _ in range(2 * max(workers, 1)):
        next(stream)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(batches):
            images, _ = next(stream)
        rates.append(batches * images.shape[0] / (time.perf_counter() - start))
    del stream
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tile-size", type=int, default=2048, help="synthetic tile size (16 patches at 2048)")
    parser.add_argument("--workdir", type=Path, default=None, help="where temporary files go (default: system temp)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # as in a loader worker; the main process only collates

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        raw = synthesize("potsdam", Path(tmp) / "raw", tiles=1, tile_size=args.tile_size)
        prepare("potsdam", raw, Path(tmp) / "prepared", patch_size=CROP)
        dataset = build_dataset("potsdam", Path(tmp) / "prepared", "train", norm="clip", crop_size=CROP, augment=True)
        image, mask = dataset[0, 0]
        print(f"# data loader on {device_name('cpu')}: synthetic Potsdam, {len(dataset)} patches of {CROP}x{CROP}, "
              f"items {tuple(image.shape)} {image.dtype} + {tuple(mask.shape)} {mask.dtype}, batch {BATCH}, "
              f"median of {args.repeats} x {args.batches} batches\n")
        print(f"one BEMSeg run of 80k iterations at batch {BATCH} in one hour needs {NEEDED:.1f} images/s\n")
        print("| workers | images/s | images/s per worker | workers for 88.9 images/s |")
        print("| ---: | ---: | ---: | ---: |")
        for workers in args.workers:
            rate = images_per_second(dataset, workers, args.batches, args.repeats)
            per_worker = rate / workers
            print(f"| {workers} | {rate:.1f} | {per_worker:.1f} | {math.ceil(NEEDED / per_worker)} |")


if __name__ == "__main__":
    main()
