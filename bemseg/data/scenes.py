"""Synthetic scene layouts: class maps with learnable structure and class shares near the real ones.

A city (ISPRS) has a road grid, rectangular buildings in the blocks, paved yards, cars on the
road lanes, and vegetation blobs split into trees and low vegetation with clutter patches among
them. A land-cover scene (LoveDA) has water bodies, a road net, forest blobs, buildings near the
roads and rectangular parcels of agriculture, barren land and background, sometimes with a
no-data strip at an edge. Each area is filled up to a per-scene budget, so class shares come out
near the targets while every scene differs. Everything is vectorised (slices and whole-array
operations), so a 6000x6000 tile takes seconds. Alongside the classes a scene returns a `tone`
map (uint8) that the renderer uses for per-object colour variants (each roof, car, parcel).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

#: Placeholder for pixels not yet assigned to a class.
UNSET = 254
#: LoveDA no-data pixels (mask value 0 in the archives).
NODATA = 253


@dataclass(frozen=True)
class CityRecipe:
    """Targets and object sizes of an ISPRS city; sizes are fractions of the tile's short side."""

    shares: dict[str, float]
    roads_per_axis: tuple[int, int]
    road_width: tuple[float, float]
    cell: tuple[float, float]  # side of a building lot
    tree_blob: float  # typical size of tree groups
    car: tuple[float, float]  # car length and width


@dataclass(frozen=True)
class LandRecipe:
    """Targets and object sizes of a LoveDA land-cover scene (one domain)."""

    shares: dict[str, float]
    road_width: tuple[float, float]
    parcel: tuple[float, float]
    building: tuple[float, float]
    building_reach: float  # buildings stand within this distance of a road (fraction of the side)
    nodata_chance: float


POTSDAM_CITY = CityRecipe(
    shares={"impervious_surface": 0.28, "building": 0.27, "low_vegetation": 0.23, "tree": 0.15,
            "car": 0.017, "clutter": 0.05},
    roads_per_axis=(2, 3), road_width=(0.025, 0.04), cell=(0.09, 0.16), tree_blob=0.07, car=(0.015, 0.007))

VAIHINGEN_CITY = CityRecipe(
    shares={"impervious_surface": 0.28, "building": 0.26, "low_vegetation": 0.21, "tree": 0.23,
            "car": 0.012, "clutter": 0.007},
    roads_per_axis=(1, 3), road_width=(0.03, 0.05), cell=(0.11, 0.2), tree_blob=0.09, car=(0.02, 0.009))

LOVEDA_LAND = {
    "Urban": LandRecipe(
        shares={"background": 0.42, "building": 0.20, "road": 0.13, "water": 0.06, "barren": 0.06,
                "forest": 0.08, "agriculture": 0.05},
        road_width=(0.02, 0.035), parcel=(0.12, 0.3), building=(0.04, 0.09), building_reach=1.0,
        nodata_chance=0.15),
    "Rural": LandRecipe(
        shares={"background": 0.38, "building": 0.04, "road": 0.03, "water": 0.10, "barren": 0.04,
                "forest": 0.12, "agriculture": 0.29},
        road_width=(0.012, 0.025), parcel=(0.15, 0.35), building=(0.025, 0.05), building_reach=0.12,
        nodata_chance=0.35),
}


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """Value noise in [0, 1): a random grid of spacing `cell` pixels, smoothstep-interpolated (float32)."""
    height, width = shape
    cell = max(float(cell), 1.0)
    grid = rng.random((int(height / cell) + 2, int(width / cell) + 2), dtype=np.float32)

    def axis(n: int) -> tuple[np.ndarray, np.ndarray]:
        pos = (np.arange(n, dtype=np.float32) + 0.5) / np.float32(cell)
        t = pos - np.floor(pos)
        index = pos.astype(np.intp)
        return index, t * t * (3 - 2 * t)

    iy, ty = axis(height)
    ix, tx = axis(width)
    rows = grid[:, ix] * (1 - tx) + grid[:, ix + 1] * tx
    out = rows[iy]
    out *= (1 - ty)[:, None]
    out += rows[iy + 1] * ty[:, None]
    return out


def jitter_shares(rng: np.random.Generator, shares: dict[str, float], spread: float) -> dict[str, float]:
    """Per-scene targets: each share scaled by a log-normal factor, renormalised to the same total."""
    raw = {k: v * float(np.exp(rng.normal(0.0, spread))) for k, v in shares.items()}
    scale = sum(shares.values()) / sum(raw.values())
    return {k: v * scale for k, v in raw.items()}


def _claim_top(cls: np.ndarray, field: np.ndarray, count: float, value: int) -> None:
    """Give the `count` unset pixels with the highest `field` the class `value` (blob shapes)."""
    free = cls == UNSET
    candidates = field[free]
    count = min(int(count), candidates.size)
    if count <= 0:
        return
    threshold = np.partition(candidates, candidates.size - count)[candidates.size - count]
    cls[free & (field >= threshold)] = value


def _bands(rng: np.random.Generator, length: int, count: int, width: int) -> list[tuple[int, int]]:
    """`count` road bands (start, end) across an axis of `length`, spread out with jitter."""
    centres = (np.arange(count) + rng.uniform(0.25, 0.75, count)) / max(count, 1) * length
    return [(max(int(c) - width // 2, 0), min(int(c) - width // 2 + width, length)) for c in centres]


def _free_intervals(length: int, bands: list[tuple[int, int]], margin: int) -> list[tuple[int, int]]:
    """The stretches of an axis between road bands, shrunk by `margin` on each side."""
    edges = [(0, 0), *sorted(bands), (length, length)]
    spans = [(a_end + margin, b_start - margin) for (_, a_end), (b_start, _) in itertools.pairwise(edges)]
    return [(a, b) for a, b in spans if b - a >= 4]


def _cells(rng: np.random.Generator, spans_y: list[tuple[int, int]], spans_x: list[tuple[int, int]],
           side: tuple[float, float]) -> list[tuple[int, int, int, int]]:
    """Lots (y0, y1, x0, x1) that tile each block between roads, about `side` pixels wide, shuffled."""
    lots = []
    for y0, y1 in spans_y:
        for x0, x1 in spans_x:
            ny = max(1, round((y1 - y0) / rng.uniform(*side)))
            nx = max(1, round((x1 - x0) / rng.uniform(*side)))
            ys = np.linspace(y0, y1, ny + 1).astype(int)
            xs = np.linspace(x0, x1, nx + 1).astype(int)
            lots += [(ys[i], ys[i + 1], xs[j], xs[j + 1]) for i in range(ny) for j in range(nx)]
    order = rng.permutation(len(lots))
    return [lots[i] for i in order]


def _inner(rng: np.random.Generator, lot: tuple[int, int, int, int], fill: tuple[float, float]
           ) -> tuple[slice, slice]:
    """A rectangle inside a lot covering `fill` of each side, at a random position."""
    y0, y1, x0, x1 = lot
    h = max(2, int((y1 - y0) * rng.uniform(*fill)))
    w = max(2, int((x1 - x0) * rng.uniform(*fill)))
    top = y0 + int(rng.integers(0, max(y1 - y0 - h, 0) + 1))
    left = x0 + int(rng.integers(0, max(x1 - x0 - w, 0) + 1))
    return slice(top, top + h), slice(left, left + w)


def _fill_lots(rng: np.random.Generator, cls: np.ndarray, tone: np.ndarray, lots: list, budget: int,
               value: int, fill: tuple[float, float], ridge: bool = False) -> list:
    """Paint one rectangle per lot with `value` on unset pixels until `budget` pixels; return unused lots.

    Each rectangle gets its own tone (colour variant); with `ridge`, the two halves along its long
    side differ in shade, like the two faces of a gable roof.
    """
    used = 0
    for n, lot in enumerate(lots):
        if used >= budget:
            return lots[n:]
        window = _inner(rng, lot, fill)
        free = cls[window] == UNSET
        shade = np.full(free.shape, rng.integers(0, 256), dtype=np.uint8)
        if ridge:
            rows, cols = free.shape
            half = np.s_[:, cols // 2:] if rows >= cols else np.s_[rows // 2:, :]  # ridge along the long side
            shade[half] ^= 32
        cls[window][free] = value
        tone[window][free] = shade[free]
        used += int(np.count_nonzero(free))
    return []


def city_scene(rng: np.random.Generator, height: int, width: int, recipe: CityRecipe,
               class_names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(classes uint8, tone uint8) of a synthetic city tile with ISPRS classes."""
    index = {name: i for i, name in enumerate(class_names)}
    shares = jitter_shares(rng, recipe.shares, 0.15)
    side, total = min(height, width), height * width
    cls = np.full((height, width), UNSET, dtype=np.uint8)
    tone = (smooth_noise(rng, (height, width), side / 5) * 255).astype(np.uint8)

    road_w = max(3, int(side * rng.uniform(*recipe.road_width)))
    roads = {axis: _bands(rng, (height, width)[axis], int(rng.integers(recipe.roads_per_axis[0],
                                                                         recipe.roads_per_axis[1] + 1)), road_w)
             for axis in (0, 1)}
    for a, b in roads[0]:
        cls[a:b] = index["impervious_surface"]
    for a, b in roads[1]:
        cls[:, a:b] = index["impervious_surface"]

    margin = max(1, road_w // 6)
    lots = _cells(rng, _free_intervals(height, roads[0], margin), _free_intervals(width, roads[1], margin),
                  (side * recipe.cell[0], side * recipe.cell[1]))
    lots = _fill_lots(rng, cls, tone, lots, int(shares["building"] * total), index["building"], (0.55, 0.9),
                      ridge=True)
    paved = (shares["impervious_surface"] + shares["car"]) * total - np.count_nonzero(
        cls == index["impervious_surface"])
    _fill_lots(rng, cls, tone, lots, int(paved), index["impervious_surface"], (0.6, 1.0))

    _claim_top(cls, smooth_noise(rng, (height, width), max(2.0, side / 50)), shares["clutter"] * total,
               index["clutter"])
    blobs = smooth_noise(rng, (height, width), side * recipe.tree_blob)
    blobs += 0.5 * smooth_noise(rng, (height, width), side * recipe.tree_blob / 3)
    _claim_top(cls, blobs, shares["tree"] * total, index["tree"])
    cls[cls == UNSET] = index["low_vegetation"]

    car_len = max(8, int(side * recipe.car[0]))
    car_w = max(4, int(side * recipe.car[1]))
    _park_cars(rng, cls, tone, roads, int(shares["car"] * total / (car_len * car_w)), (car_len, car_w),
               index["car"])
    return cls, tone


def _park_cars(rng: np.random.Generator, cls: np.ndarray, tone: np.ndarray,
               roads: dict[int, list[tuple[int, int]]], count: int, size: tuple[int, int], value: int) -> None:
    """Paint `count` cars on the two lanes of random roads, aligned with the road."""
    bands = [(axis, a, b) for axis in (0, 1) for a, b in roads[axis]]
    length, breadth = size
    for _ in range(count):
        axis, a, b = bands[int(rng.integers(len(bands)))]
        lane = a + (b - a) * (0.25 if rng.random() < 0.5 else 0.75) - breadth / 2
        across = slice(max(int(lane), a), max(int(lane), a) + breadth)
        start = int(rng.integers(0, max(cls.shape[1 - axis] - length, 1)))
        along = slice(start, start + length)
        window = (across, along) if axis == 0 else (along, across)
        cls[window] = value
        tone[window] = rng.integers(0, 256)


def land_scene(rng: np.random.Generator, size: int, recipe: LandRecipe, class_names: tuple[str, ...]
               ) -> tuple[np.ndarray, np.ndarray]:
    """(classes uint8 with NODATA, tone uint8) of a synthetic LoveDA image of `size` x `size`."""
    index = {name: i for i, name in enumerate(class_names)}
    shares = jitter_shares(rng, recipe.shares, 0.4)
    total = size * size
    cls = np.full((size, size), UNSET, dtype=np.uint8)
    tone = (smooth_noise(rng, (size, size), size / 4) * 255).astype(np.uint8)

    if rng.random() < recipe.nodata_chance:
        depth = max(1, int(size * rng.uniform(0.03, 0.15)))
        edge = [np.s_[:depth, :], np.s_[-depth:, :], np.s_[:, :depth], np.s_[:, -depth:]][int(rng.integers(4))]
        cls[edge] = NODATA

    _claim_top(cls, smooth_noise(rng, (size, size), size / 3), shares["water"] * total, index["water"])

    road_w = max(2, int(size * rng.uniform(*recipe.road_width)))
    count = max(1, round(shares["road"] * total / (road_w * size)))
    split = int(rng.integers(0, count + 1))
    roads = {0: _bands(rng, size, split, road_w), 1: _bands(rng, size, count - split, road_w)}
    near = np.zeros((size, size), dtype=bool)
    reach = int(size * recipe.building_reach)
    for a, b in roads[0]:
        cls[a:b][cls[a:b] == UNSET] = index["road"]
        near[max(a - reach, 0):b + reach] = True
    for a, b in roads[1]:
        cls[:, a:b][cls[:, a:b] == UNSET] = index["road"]
        near[:, max(a - reach, 0):b + reach] = True

    blobs = smooth_noise(rng, (size, size), size / 5) + 0.5 * smooth_noise(rng, (size, size), size / 15)
    blobs[near] -= 0.5  # forests keep away from roads and settlements
    _claim_top(cls, blobs, shares["forest"] * total, index["forest"])

    lots = _cells(rng, [(0, size)], [(0, size)], (size * recipe.building[0] * 1.6, size * recipe.building[1] * 1.6))
    lots = [lot for lot in lots if near[(lot[0] + lot[1]) // 2, (lot[2] + lot[3]) // 2]]
    _fill_lots(rng, cls, tone, lots, int(shares["building"] * total), index["building"], (0.5, 0.8), ridge=True)

    parcels = _cells(rng, [(0, size)], [(0, size)], (size * recipe.parcel[0], size * recipe.parcel[1]))
    land = ("agriculture", "barren", "background")
    need = np.array([shares[k] * total for k in land])
    for lot in parcels:
        window = np.s_[lot[0]:lot[1], lot[2]:lot[3]]
        free = cls[window] == UNSET
        pick = int(rng.choice(3, p=np.maximum(need, 1e-9) / np.maximum(need, 1e-9).sum()))
        cls[window][free] = index[land[pick]]
        tone[window][free] = rng.integers(0, 256)
        need[pick] -= np.count_nonzero(free)
    return cls, tone
