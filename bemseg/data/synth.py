"""Seeded synthetic archives in each dataset's real layout: the embedded default when no data is on disk.

`synthesize` writes the same archive files, member names and encodings users download (RGB-coded
label TIFFs with and without a black eroded boundary for ISPRS, PNG index masks for LoveDA), so
the real converters and loaders run on them unchanged. Every tile is drawn from its own generator
seeded by (seed, dataset, tile id), so a tile does not depend on which others are written; zip
members carry fixed timestamps, so the same settings give byte-identical files.
`OUT/SYNTHETIC.json`, written with the archives as one atomic folder, marks the data as synthetic.
Rerunning with other settings replaces that folder as a whole, so it is refused while the folder
holds files `synthesize` did not write: the suite never deletes the user's files.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from bemseg import atomic
from bemseg.data import render, scenes
from bemseg.data.catalog import DATASETS, DatasetInfo, get_dataset_info
from bemseg.data.imageio import encode
from bemseg.data.labels import colorize
from bemseg.data.sources import archive_path, loveda_domain
from bemseg.errors import ConfigError
from bemseg.lock import exclusive

MARKER = "SYNTHETIC.json"
#: Bumped whenever the generator's output changes, so stale synthetic folders are rewritten.
GENERATOR_VERSION = 1
#: Tiles (ISPRS, per split) or images (LoveDA, per split and domain) written by default: small
#: enough that the default workflow trains in minutes on two CPU cores.
DEFAULT_TILES = {"potsdam": 4, "vaihingen": 4, "loveda": 2}
#: Default side of a tile (ISPRS) or image (LoveDA); Vaihingen areas vary around it by up to 15 %.
DEFAULT_TILE_SIZE = {"potsdam": 384, "vaihingen": 384, "loveda": 256}
MIN_TILE_SIZE = 64
#: Eroded boundary radius of ISPRS noBoundary labels at the real 6000-pixel tile side.
BOUNDARY_RADIUS = 3
_REAL_SIDE = 6000
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ZIP_LEVEL = 1
_CITY = {"potsdam": scenes.POTSDAM_CITY, "vaihingen": scenes.VAIHINGEN_CITY}


def synthetic_ids(dataset: str, tiles: int | None = None) -> dict[str, list[str]]:
    """The ids `synthesize` writes per split: the first ids of each split (ISPRS) or domain (LoveDA)."""
    info = get_dataset_info(dataset)
    tiles = DEFAULT_TILES[info.name] if tiles is None else tiles
    if tiles < 1:
        raise ConfigError(f"--tiles: {tiles} is not allowed; give at least 1 tile per split")
    if info.domains:
        return {split: [i for ids in domains.values() for i in ids[:tiles]] for split, domains in info.domains.items()}
    return {split: list(ids[:tiles]) for split, ids in info.splits.items()}


def synthetic_marker(raw: str | Path) -> dict[str, Any] | None:
    """The content of `RAW/SYNTHETIC.json`, or None for real data."""
    return atomic.read_json_or_none(Path(raw) / MARKER, remedy=f"delete {raw} and run `bemseg synth` again")


def synthesize(dataset: str, out: Path | str, *, seed: int = 0, tiles: int | None = None,
               tile_size: int | None = None) -> Path:
    """Write the synthetic archives of `dataset` into `out` (atomically; a rerun with equal settings does nothing)."""
    info = get_dataset_info(dataset)
    out = Path(out)
    if seed < 0:
        raise ConfigError(f"--seed: {seed} is not allowed; use a seed >= 0")
    size = DEFAULT_TILE_SIZE[info.name] if tile_size is None else tile_size
    if size < MIN_TILE_SIZE:
        raise ConfigError(f"--tile-size: {size} is too small; use at least {MIN_TILE_SIZE} pixels")
    ids = synthetic_ids(info.name, tiles)
    marker = {
        "dataset": info.name, "seed": seed, "tiles": DEFAULT_TILES[info.name] if tiles is None else tiles,
        "tile_size": size, "generator_version": GENERATOR_VERSION, "ids": ids,
        "note": "SYNTHETIC data written by `bemseg synth`, not the real dataset: results on it are not "
                "comparable to the paper",
    }
    with exclusive(out):
        existing = synthetic_marker(out)
        if existing == marker:
            return out
        if existing is None and out.is_dir() and any(out.iterdir()):
            raise ConfigError(f"{out}: exists and is not a synthetic data folder (no {MARKER}); "
                              "give a new or empty folder")
        atomic.refuse_foreign(out, [MARKER, *(a.filename for d in DATASETS.values() for a in d.archives.values())],
                              "`bemseg synth`")
        atomic.discard_temporaries(out)
        with atomic.atomic_directory(out) as tmp:
            if info.domains:
                _write_loveda(info, tmp, seed, ids, size)
            else:
                _write_isprs(info, tmp, seed, ids, size)
            atomic.write_json(tmp / MARKER, marker)
    return out


def tile_rng(seed: int, dataset: str, tile_id: str) -> np.random.Generator:
    """The generator of one tile: depends on the seed, the dataset and the tile id only."""
    return np.random.default_rng([seed, zlib.crc32(f"{dataset}/{tile_id}".encode())])


def boundary(cls: np.ndarray, radius: int) -> np.ndarray:
    """The eroded band: pixels within `radius` - 1 (Chebyshev) of a class change.

    A class change marks the pixel before it (left of a vertical edge, above a horizontal one), so
    radius 1 is a one-pixel line and radius 3 a five-pixel band, close to ISPRS's eroded labels.
    """
    edge = np.zeros(cls.shape, dtype=bool)
    edge[:, :-1] = cls[:, :-1] != cls[:, 1:]
    edge[:-1] |= cls[:-1] != cls[1:]
    return ndimage.maximum_filter(edge, size=2 * radius - 1) if radius > 1 else edge


def isprs_tile(info: DatasetInfo, seed: int, tile_id: str, size: int) -> dict[str, np.ndarray]:
    """One synthetic ISPRS tile: `image` and the colour-coded `label_full` and eroded `label` (HxWx3 uint8)."""
    rng = tile_rng(seed, info.name, tile_id)
    height, width = size, size
    if info.name == "vaihingen":  # areas differ in size, as the real ones do
        height, width = (round(size * f) for f in rng.uniform(0.85, 1.15, 2))
    cls, tone = scenes.city_scene(rng, height, width, _CITY[info.name], info.class_names)
    image = render.render(rng, cls, tone, render.ISPRS_LOOK, info.class_names, render.BANDS[info.name])
    radius = max(1, round(BOUNDARY_RADIUS * min(height, width) / _REAL_SIDE))
    eroded = cls.copy()
    eroded[boundary(cls, radius)] = 255
    return {"image": image, "label_full": colorize(cls, info.palette), "label": colorize(eroded, info.palette)}


def loveda_image(info: DatasetInfo, seed: int, tile_id: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic LoveDA image (HxWx3 uint8) and its mask (uint8, 0 = no-data, 1..7 = classes)."""
    rng = tile_rng(seed, info.name, tile_id)
    _, domain = loveda_domain(info, tile_id)
    cls, tone = scenes.land_scene(rng, size, scenes.LOVEDA_LAND[domain], info.class_names)
    image = render.render(rng, cls, tone, render.LOVEDA_LOOK, info.class_names, render.BANDS[info.name])
    mask = np.where(cls < info.num_classes, cls + 1, 0).astype(np.uint8)
    return image, mask


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    """Add a member with a fixed timestamp, permissions and compression (byte-identical archives)."""
    member = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    member.create_system = 3
    member.external_attr = 0o644 << 16
    archive.writestr(member, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=_ZIP_LEVEL)


def _write_isprs(info: DatasetInfo, folder: Path, seed: int, ids: dict[str, list[str]], size: int) -> None:
    roles = ("image", "label_full", "label")
    archives = {role: zipfile.ZipFile(folder / info.archives[role].filename, "w") for role in roles}
    try:
        for tile_id in (i for split in ids.values() for i in split):
            for role, array in isprs_tile(info, seed, tile_id, size).items():
                _add(archives[role], archive_path(info, role, tile_id), encode(array, "TIFF"))
    finally:
        for archive in archives.values():
            archive.close()


def _write_loveda(info: DatasetInfo, folder: Path, seed: int, ids: dict[str, list[str]], size: int) -> None:
    for split, split_ids in ids.items():
        with zipfile.ZipFile(folder / info.archives[split].filename, "w") as archive:
            for tile_id in split_ids:
                image, mask = loveda_image(info, seed, tile_id, size)
                _add(archive, archive_path(info, split, tile_id, "image"), encode(image, "PNG"))
                _add(archive, archive_path(info, split, tile_id, "label"), encode(mask, "PNG"))
