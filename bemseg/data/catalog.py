"""Facts about the three datasets as users download them: classes, palettes, archives, splits.

Everything here is transcribed from the datasets' documentation and the paper's protocol (the
mmsegmentation splits); the synthetic generator, the converters, the dataset classes and the
reports all read it, so a fact is stated once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bemseg.errors import ConfigError

IGNORE_INDEX = 255

ISPRS_CLASSES = ("impervious_surface", "building", "low_vegetation", "tree", "car", "clutter")
ISPRS_PALETTE = ((255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0), (255, 255, 0), (255, 0, 0))


@dataclass(frozen=True)
class Archive:
    """One archive users download: its file name and the member name pattern of each source id."""

    filename: str
    member: str  # format string with {id}; members are matched by basename, wherever they sit
    required: bool = True


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset's classes, colours, archives and the paper's splits."""

    name: str
    title: str
    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    #: split name -> source ids (ISPRS tile/area ids, LoveDA image ids).
    splits: dict[str, tuple[str, ...]]
    #: role -> archive; roles: image, label (the one prepare decodes), label_full (with boundaries).
    archives: dict[str, Archive]
    #: How labels are stored: "rgb" (ISPRS colour codes) or "index" (LoveDA 0..7 masks).
    label_kind: str
    #: Short side used by the random-resize augmentation (mmsegmentation's configs).
    resize_scale: int = 512
    #: LoveDA only: split -> domain -> ids (the archives' folders).
    domains: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    #: LoveDA only: archive md5 as published on Zenodo.
    md5: dict[str, str] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _ids(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _range(first: int, last: int) -> tuple[str, ...]:
    return tuple(str(i) for i in range(first, last + 1))


POTSDAM = DatasetInfo(
    name="potsdam",
    title="ISPRS Potsdam",
    class_names=ISPRS_CLASSES,
    palette=ISPRS_PALETTE,
    splits={
        "train": _ids("2_10 2_11 2_12 3_10 3_11 3_12 4_10 4_11 4_12 5_10 5_11 5_12 "
                      "6_7 6_8 6_9 6_10 6_11 6_12 7_7 7_8 7_9 7_10 7_11 7_12"),
        "test": _ids("2_13 2_14 3_13 3_14 4_13 4_14 4_15 5_13 5_14 5_15 6_13 6_14 6_15 7_13"),
    },
    archives={
        "image": Archive("2_Ortho_RGB.zip", "top_potsdam_{id}_RGB.tif"),
        "label": Archive("5_Labels_all_noBoundary.zip", "top_potsdam_{id}_label_noBoundary.tif"),
        "label_full": Archive("5_Labels_all.zip", "top_potsdam_{id}_label.tif", required=False),
        "image_rgbir": Archive("4_Ortho_RGBIR.zip", "top_potsdam_{id}_RGBIR.tif", required=False),
    },
    label_kind="rgb",
)

VAIHINGEN = DatasetInfo(
    name="vaihingen",
    title="ISPRS Vaihingen",
    class_names=ISPRS_CLASSES,
    palette=ISPRS_PALETTE,
    splits={
        "train": tuple(f"area{n}" for n in (1, 3, 5, 7, 11, 13, 15, 17, 21, 23, 26, 28, 30, 32, 34, 37)),
        "test": tuple(f"area{n}" for n in (2, 4, 6, 8, 10, 12, 14, 16, 20, 22, 24, 27, 29, 31, 33, 35, 38)),
    },
    archives={
        "image": Archive("ISPRS_semantic_labeling_Vaihingen.zip", "top_mosaic_09cm_{id}.tif"),
        "label": Archive("ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip",
                         "top_mosaic_09cm_{id}_noBoundary.tif"),
        "label_full": Archive("ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE.zip",
                              "top_mosaic_09cm_{id}.tif", required=False),
    },
    label_kind="rgb",
)

# LoveDA ids run through the archives: Train Rural 0-1365, Train Urban 1366-2521, Val Rural 2522-3513,
# Val Urban 3514-4190, Test Rural 4191-5166, Test Urban 5167-5986 (5987 images in all).
_LOVEDA_DOMAINS = {
    "train": {"Rural": _range(0, 1365), "Urban": _range(1366, 2521)},
    "test": {"Rural": _range(2522, 3513), "Urban": _range(3514, 4190)},
}

LOVEDA = DatasetInfo(
    name="loveda",
    title="LoveDA",
    class_names=("background", "building", "road", "water", "barren", "forest", "agriculture"),
    palette=((255, 255, 255), (255, 0, 0), (255, 255, 0), (0, 0, 255),
             (159, 129, 183), (0, 255, 0), (255, 195, 128)),
    splits={split: tuple(i for ids in doms.values() for i in ids) for split, doms in _LOVEDA_DOMAINS.items()},
    # The paper's "test" split is LoveDA's Val (test labels are withheld by the benchmark server).
    archives={
        "train": Archive("Train.zip", "Train/{domain}/{kind}/{id}.png"),
        "test": Archive("Val.zip", "Val/{domain}/{kind}/{id}.png"),
    },
    label_kind="index",
    resize_scale=1024,
    domains=_LOVEDA_DOMAINS,
    md5={"Train.zip": "de2b196043ed9b4af1690b3f9a7d558f", "Val.zip": "84cae2577468ff0b5386758bb386d31d",
         "Test.zip": "a489be0090465e01fb067795d24e6b47"},
)

DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (POTSDAM, VAIHINGEN, LOVEDA)}


def get_dataset_info(name: str) -> DatasetInfo:
    """The catalogue entry for `name`, or a one-line ConfigError listing the known datasets."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(f"unknown dataset '{name}'; known datasets: {', '.join(DATASETS)}") from None
