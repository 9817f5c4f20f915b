"""Synthetic archives: real layouts, byte-identical for a seed, class shares near the real ones."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bemseg.data import synth
from bemseg.data.catalog import LOVEDA, POTSDAM, VAIHINGEN, get_dataset_info
from bemseg.data.labels import decode_rgb
from bemseg.errors import ConfigError, OutputError

#: Published class shares (../spec/datasets.md and the paper's Figure 4).
REAL_SHARES = {
    "potsdam": [0.28, 0.27, 0.23, 0.15, 0.017, 0.05],
    "vaihingen": [0.28, 0.26, 0.21, 0.23, 0.012, 0.007],
    "loveda": [0.40, 0.12, 0.08, 0.08, 0.05, 0.10, 0.17],
}


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tmp_path):
    a = synth.synthesize("potsdam", tmp_path / "a", seed=3, tiles=1, tile_size=96)
    b = synth.synthesize("potsdam", tmp_path / "b", seed=3, tiles=1, tile_size=96)
    c = synth.synthesize("potsdam", tmp_path / "c", seed=4, tiles=1, tile_size=96)
    assert _files(a) == _files(b)
    assert _files(a)["2_Ortho_RGB.zip"] != _files(c)["2_Ortho_RGB.zip"]
    with zipfile.ZipFile(a / "2_Ortho_RGB.zip") as archive:
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_a_tile_does_not_depend_on_which_others_are_written(tmp_path):
    one = _members(synth.synthesize("loveda", tmp_path / "one", tiles=1, tile_size=64) / "Train.zip")
    two = _members(synth.synthesize("loveda", tmp_path / "two", tiles=2, tile_size=64) / "Train.zip")
    assert one.items() <= two.items()
    assert len(two) == 2 * len(one) == 8


def test_isprs_archives_have_the_real_names_and_members(tmp_path):
    out = synth.synthesize("potsdam", tmp_path / "p", tiles=2, tile_size=80)
    ids = synth.synthetic_ids("potsdam", 2)
    assert ids == {"train": ["2_10", "2_11"], "test": ["2_13", "2_14"]}
    every = [i for split in ids.values() for i in split]
    assert sorted(p.name for p in out.iterdir()) == ["2_Ortho_RGB.zip", "5_Labels_all.zip",
                                                      "5_Labels_all_noBoundary.zip", "SYNTHETIC.json"]
    assert list(_members(out / "2_Ortho_RGB.zip")) == [f"2_Ortho_RGB/top_potsdam_{i}_RGB.tif" for i in every]
    assert list(_members(out / "5_Labels_all.zip")) == [f"top_potsdam_{i}_label.tif" for i in every]
    assert list(_members(out / "5_Labels_all_noBoundary.zip")) == [
        f"top_potsdam_{i}_label_noBoundary.tif" for i in every]
    image = Image.open(io.BytesIO(_members(out / "2_Ortho_RGB.zip")["2_Ortho_RGB/top_potsdam_2_10_RGB.tif"]))
    assert (image.format, image.mode, image.size) == ("TIFF", "RGB", (80, 80))
    marker = json.loads((out / "SYNTHETIC.json").read_text())
    assert marker["ids"] == ids and marker["seed"] == 0 and "SYNTHETIC" in marker["note"]

    out = synth.synthesize("vaihingen", tmp_path / "v", tiles=1, tile_size=200)
    assert list(_members(out / VAIHINGEN.archives["image"].filename)) == [
        "top/top_mosaic_09cm_area1.tif", "top/top_mosaic_09cm_area2.tif"]
    assert list(_members(out / VAIHINGEN.archives["label"].filename)) == [
        "top_mosaic_09cm_area1_noBoundary.tif", "top_mosaic_09cm_area2_noBoundary.tif"]
    assert list(_members(out / VAIHINGEN.archives["label_full"].filename)) == [
        "top_mosaic_09cm_area1.tif", "top_mosaic_09cm_area2.tif"]
    sizes = {Image.open(io.BytesIO(data)).size for data in _members(out / VAIHINGEN.archives["image"].filename)
             .values()}
    assert len(sizes) == 2 and all(170 <= side <= 230 for size in sizes for side in size)


def test_loveda_archives_use_the_real_ids_and_index_masks(tmp_path):
    out = synth.synthesize("loveda", tmp_path / "l", tiles=2, tile_size=64)
    train = _members(out / "Train.zip")

    def expected(folder: str, domains: dict[str, tuple[str, ...]]) -> list[str]:
        return sorted(f"{folder}/{domain}/{kind}/{i}.png" for domain, ids in domains.items() for i in ids
                      for kind in ("images_png", "masks_png"))

    assert sorted(train) == expected("Train", {"Rural": ("0", "1"), "Urban": ("1366", "1367")})
    assert sorted(_members(out / "Val.zip")) == expected("Val", {"Rural": ("2522", "2523"), "Urban": ("3514", "3515")})
    mask = Image.open(io.BytesIO(train["Train/Urban/masks_png/1366.png"]))
    image = Image.open(io.BytesIO(train["Train/Urban/images_png/1366.png"]))
    assert (mask.mode, image.mode, image.size) == ("L", "RGB", (64, 64))
    assert np.asarray(mask).max() <= 7


def test_loveda_nodata_is_black_in_the_image():
    hits = 0
    for tile_id in map(str, range(12)):
        image, mask = synth.loveda_image(LOVEDA, 0, tile_id, 64)
        if (mask == 0).any():
            hits += 1
            assert image[mask == 0].max() == 0
        assert image[mask > 0].mean() > 20
    assert hits > 0


@pytest.mark.parametrize("dataset", ["potsdam", "vaihingen", "loveda"])
def test_class_shares_of_the_default_set_are_near_the_real_ones(dataset):
    info = get_dataset_info(dataset)
    counts = np.zeros(info.num_classes)
    for tile_id in (i for ids in synth.synthetic_ids(dataset).values() for i in ids):
        if info.domains:
            _, mask = synth.loveda_image(info, 0, tile_id, synth.DEFAULT_TILE_SIZE[dataset])
            labels = mask[mask > 0] - 1
        else:
            labels, _ = decode_rgb(synth.isprs_tile(info, 0, tile_id, synth.DEFAULT_TILE_SIZE[dataset])["label_full"],
                                   info.palette)
        counts += np.bincount(labels.ravel(), minlength=256)[: info.num_classes]
    shares = counts / counts.sum()
    for name, share, real in zip(info.class_names, shares, REAL_SHARES[dataset]):
        tolerance = 0.4 * real if real < 0.05 else 0.07
        assert abs(share - real) <= tolerance, (name, share, real)


def test_no_boundary_labels_black_out_class_changes_only():
    tile = synth.isprs_tile(POTSDAM, 0, "2_10", 300)
    full, _ = decode_rgb(tile["label_full"], POTSDAM.palette)
    eroded, _ = decode_rgb(tile["label"], POTSDAM.palette)
    assert (full != 255).all()
    black = eroded == 255
    assert 0.02 < black.mean() < 0.3
    np.testing.assert_array_equal(eroded[~black], full[~black])
    changes = np.zeros_like(black)
    changes[:, :-1] |= full[:, :-1] != full[:, 1:]
    changes[:-1] |= full[:-1] != full[1:]
    np.testing.assert_array_equal(black, changes)  # radius 1 at small sizes: the class-change line
    assert synth.boundary(full, 3).sum() > black.sum()


def test_vaihingen_is_false_colour_with_red_vegetation():
    for info, vegetation_red in ((VAIHINGEN, True), (POTSDAM, False)):
        tile = synth.isprs_tile(info, 0, info.splits["train"][0], 200)
        labels, _ = decode_rgb(tile["label_full"], info.palette)
        tree = tile["image"][labels == info.class_names.index("tree")].mean(axis=0)
        assert (tree[0] > tree[1]) == vegetation_red


def test_rerun_with_same_settings_does_nothing_and_foreign_folders_are_refused(tmp_path):
    out = synth.synthesize("vaihingen", tmp_path / "v", tiles=1, tile_size=64)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    synth.synthesize("vaihingen", out, tiles=1, tile_size=64)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    synth.synthesize("vaihingen", out, tiles=1, tile_size=64, seed=1)
    assert json.loads((out / "SYNTHETIC.json").read_text())["seed"] == 1

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    with pytest.raises(ConfigError, match="not a synthetic data folder"):
        synth.synthesize("potsdam", foreign)
    assert (foreign / "notes.txt").read_text() == "keep"


def test_rerun_with_other_settings_never_deletes_the_users_files(tmp_path):
    out = synth.synthesize("potsdam", tmp_path / "raw", tiles=1, tile_size=64)
    (out / "notes.txt").write_text("mine")
    (out / "real").mkdir()
    (out / "real" / "2_Ortho_RGB.zip").write_bytes(b"a real archive")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(OutputError, match=r"raw: holds notes.txt, real, real/2_Ortho_RGB.zip, which `bemseg synth`"):
        synth.synthesize("potsdam", out, tiles=1, tile_size=96)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["raw"], "a temporary folder was left beside it"


@pytest.mark.parametrize(("kwargs", "field"), [({"tiles": 0}, "--tiles"), ({"tile_size": 8}, "--tile-size"),
                                               ({"seed": -1}, "--seed")])
def test_bad_settings_are_config_errors(tmp_path, kwargs, field):
    with pytest.raises(ConfigError, match=field):
        synth.synthesize("potsdam", tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()
