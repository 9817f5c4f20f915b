"""`prepare`: layout, counts, manifest, archives or folders, idempotence, resume, one-line errors."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bemseg.cli import main
from bemseg.data import prepare as prepare_module
from bemseg.data.catalog import LOVEDA, POTSDAM, VAIHINGEN
from bemseg.data.prepare import prepare
from bemseg.data.synth import synthesize
from bemseg.data.tiling import count_windows
from bemseg.errors import ConfigError
from tests.folders import read_only_folder, small_disk


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _stamps(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in folder.rglob("*")}


def _rewrite(archive: Path, replace: dict[str, bytes], drop: tuple[str, ...] = ()) -> None:
    """Rewrite a zip with some members replaced or dropped (a damaged or incomplete download)."""
    with zipfile.ZipFile(archive) as old:
        members = {n: old.read(n) for n in old.namelist() if n not in drop}
    members.update(replace)
    with zipfile.ZipFile(archive, "w") as new:
        for name, data in members.items():
            new.writestr(name, data)


def _tiff(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="TIFF")
    return buffer.getvalue()


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


@pytest.fixture(scope="module")
def potsdam_raw(tmp_path_factory) -> Path:
    """Synthetic Potsdam: 2 train and 2 test tiles of 600x600 (2x2 patches of 512 each)."""
    return synthesize("potsdam", tmp_path_factory.mktemp("raw") / "potsdam", tiles=2, tile_size=600)


def _copy_archives(source: Path, raw: Path) -> Path:
    """A writable copy of the Potsdam image and label archives, to damage in a test."""
    raw.mkdir()
    for name in ("2_Ortho_RGB.zip", "5_Labels_all_noBoundary.zip"):
        (raw / name).write_bytes((source / name).read_bytes())
    return raw


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bemseg: error: "), err
    return err


def test_potsdam_layout_counts_and_manifest(potsdam_raw, tmp_path):
    out = tmp_path / "prepared"
    manifest = prepare("potsdam", potsdam_raw, out)
    assert manifest == json.loads((out / "manifest.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "splits", "test", "train"]
    train = (out / "splits" / "train.txt").read_text().split()
    assert len(train) == 2 * count_windows(600, 600, 512) == 8
    assert train[:4] == ["2_10_0_0_512_512", "2_10_88_0_600_512", "2_10_0_88_512_600", "2_10_88_88_600_600"]
    assert (out / "splits" / "test.txt").read_text().split() == ["2_13", "2_14"]
    assert sorted(p.stem for p in (out / "train" / "img").iterdir()) == sorted(train)
    image, ann = Image.open(out / "train/img/2_10_0_0_512_512.png"), Image.open(out / "train/ann/2_10_0_0_512_512.png")
    assert (image.mode, ann.mode, image.size, ann.size) == ("RGB", "L", (512, 512), (512, 512))
    assert set(np.unique(_png(out / "test/ann/2_13.png"))) <= {0, 1, 2, 3, 4, 5, 255}
    assert Image.open(out / "test/img/2_13.png").size == (600, 600)

    assert manifest["settings"] == {"patch_size": 512, "stride": 512, "only": ["2_10", "2_11", "2_13", "2_14"]}
    assert manifest["samples"] == {"train": 8, "test": 2}
    assert manifest["class_names"] == list(POTSDAM.class_names)
    assert manifest["synthetic"] is True and manifest["synthetic_info"]["tile_size"] == 600
    for split in ("train", "test"):
        assert sum(manifest["pixels"][split].values()) == 2 * 600 * 600  # whole tiles, no double counting
    assert manifest["pixels"]["train"]["ignore"] > 0
    assert manifest["tiles"]["2_10"] == {"split": "train", "width": 600, "height": 600, "off_palette": 0,
                                         "undecodable": 0}
    assert set(manifest["sources"]) == {"2_Ortho_RGB.zip", "5_Labels_all_noBoundary.zip"}
    assert len(manifest["sources"]["2_Ortho_RGB.zip"]["sha256"]) == 64
    assert manifest["provenance"]["synthetic"] is True and "git_commit" in manifest["provenance"]


def test_rerun_does_nothing_and_other_settings_are_refused(potsdam_raw, tmp_path, capsys):
    out = tmp_path / "prepared"
    first = prepare("potsdam", potsdam_raw, out)
    stamps = _stamps(out)
    assert prepare("potsdam", potsdam_raw, out) == first
    assert _stamps(out) == stamps
    err = _one_line_error(capsys, ["prepare", "potsdam", str(potsdam_raw), str(out), "--patch-size", "256"])
    assert str(out) in err and "delete it or choose another OUT" in err
    assert _stamps(out) == stamps


def test_an_interrupted_run_resumes_without_redoing_finished_tiles(potsdam_raw, tmp_path, monkeypatch):
    reference = _tree(_strip_manifest(prepare("potsdam", potsdam_raw, tmp_path / "reference"), tmp_path / "reference"))
    real = prepare_module.convert_item
    calls: list[str] = []

    def interrupted(info, item, staging, settings):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(item.tile_id)
        return real(info, item, staging, settings)

    out = tmp_path / "prepared"
    monkeypatch.setattr(prepare_module, "convert_item", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare("potsdam", potsdam_raw, out)
    assert not out.exists() and (tmp_path / "prepared.partial").is_dir()

    calls.clear()
    monkeypatch.setattr(prepare_module, "convert_item", lambda *a: calls.append(a[1].tile_id) or real(*a))
    prepare("potsdam", potsdam_raw, out)
    assert calls == ["2_13", "2_14"]
    assert not (tmp_path / "prepared.partial").exists()
    assert _tree(_strip_manifest(json.loads((out / "manifest.json").read_text()), out)) == reference


def _strip_manifest(manifest: dict, folder: Path) -> Path:
    """Drop the manifest (it holds timestamps) so two folders can be compared byte for byte."""
    assert manifest
    (folder / "manifest.json").unlink()
    return folder


def test_unpacked_folders_and_loose_files_give_the_same_result(potsdam_raw, tmp_path):
    reference = _tree(_strip_manifest(prepare("potsdam", potsdam_raw, tmp_path / "zips"), tmp_path / "zips"))
    folders, loose = tmp_path / "folders", tmp_path / "loose"
    for archive in ("2_Ortho_RGB.zip", "5_Labels_all_noBoundary.zip"):
        with zipfile.ZipFile(potsdam_raw / archive) as zf:
            zf.extractall(folders / archive.removesuffix(".zip"))
            zf.extractall(loose / "downloads" / "isprs")
    for raw in (folders, loose):
        manifest = prepare("potsdam", raw, tmp_path / f"out_{raw.name}", only=["2_10", "2_11", "2_13", "2_14"])
        assert manifest["sources"]["2_Ortho_RGB.zip"]["fingerprint"]["kind"] == "folder"
        assert _tree(_strip_manifest(manifest, tmp_path / f"out_{raw.name}")) == reference


def test_vaihingen_patch_counts_follow_the_formula_and_images_come_from_top(tmp_path):
    raw = synthesize("vaihingen", tmp_path / "raw", tiles=1, tile_size=1100)
    image_zip = raw / VAIHINGEN.archives["image"].filename
    # The real image archive also holds same-named labels; the images are the ones under top/.
    with zipfile.ZipFile(image_zip) as zf:
        decoy = zf.read("top/top_mosaic_09cm_area1.tif")
    _rewrite(image_zip, {"gts_for_participants/top_mosaic_09cm_area1.tif": decoy[:100]})
    manifest = prepare("vaihingen", raw, tmp_path / "out", stride=400)
    tile = manifest["tiles"]["area1"]
    assert manifest["samples"]["train"] == count_windows(tile["height"], tile["width"], 512, 400) > 4
    assert tile["width"] != tile["height"]
    assert manifest["splits"]["test"] == ["area2"]


def test_loveda_only_needs_the_archive_of_the_selected_ids(tmp_path):
    raw = synthesize("loveda", tmp_path / "raw", tiles=1, tile_size=64)
    (raw / "Val.zip").unlink()
    (raw / "SYNTHETIC.json").unlink()  # now it looks like a partial real download
    manifest = prepare("loveda", raw, tmp_path / "out", only=["1366", "0"])
    assert manifest["splits"] == {"train": ["0", "1366"], "test": []}
    assert manifest["synthetic"] is False
    source = manifest["sources"]["Train.zip"]
    assert source["md5_expected"] == LOVEDA.md5["Train.zip"] and source["md5_match"] is False
    with zipfile.ZipFile(raw / "Train.zip") as zf:
        stored = np.asarray(Image.open(io.BytesIO(zf.read("Train/Urban/masks_png/1366.png"))))
    prepared = _png(tmp_path / "out/train/ann/1366.png")
    np.testing.assert_array_equal(prepared[stored == 0], 255)
    np.testing.assert_array_equal(prepared[stored > 0], stored[stored > 0] - 1)
    assert _png(tmp_path / "out/train/img/1366.png").shape == (64, 64, 3)


def test_off_palette_tiles_are_reported_not_dropped(potsdam_raw, tmp_path, capsys):
    raw = _copy_archives(potsdam_raw, tmp_path / "raw")
    member = "top_potsdam_2_10_label_noBoundary.tif"
    with zipfile.ZipFile(raw / "5_Labels_all_noBoundary.zip") as zf:
        label = np.array(Image.open(io.BytesIO(zf.read(member))))
    label[:10, :10] = (252, 255, 0)
    label[20:25, :10] = (255, 0, 255)
    _rewrite(raw / "5_Labels_all_noBoundary.zip", {member: _tiff(label)})
    manifest = prepare("potsdam", raw, tmp_path / "out", only=["2_10"])
    assert manifest["tiles"]["2_10"]["off_palette"] == 100
    assert manifest["tiles"]["2_10"]["undecodable"] == 50
    assert manifest["samples"]["train"] == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and member in err and "100 off-palette" in err and "50 undecodable" in err
    assert (_png(tmp_path / "out/train/ann/2_10_0_0_512_512.png")[:10, :10] == 4).all()


def test_missing_archive_is_one_line_naming_it(potsdam_raw, tmp_path, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "5_Labels_all_noBoundary.zip").write_bytes((potsdam_raw / "5_Labels_all_noBoundary.zip").read_bytes())
    out = tmp_path / "out"
    err = _one_line_error(capsys, ["prepare", "potsdam", str(raw), str(out), "--only", "2_10"])
    assert "archive 2_Ortho_RGB.zip not found" in err and str(raw) in err and "ISPRS" in err
    assert not out.exists() and not (tmp_path / "out.partial").exists()


def test_missing_tile_is_one_line_listing_it(potsdam_raw, tmp_path, capsys):
    out = tmp_path / "out"
    err = _one_line_error(capsys, ["prepare", "potsdam", str(potsdam_raw), str(out), "--only", "2_10", "3_10", "7_13"])
    assert "4 of 6 needed files missing" in err
    assert "top_potsdam_3_10_RGB.tif" in err and str(potsdam_raw / "2_Ortho_RGB.zip") in err
    assert not out.exists()


def test_full_splits_need_every_tile(potsdam_raw, tmp_path, capsys):
    raw = _copy_archives(potsdam_raw, tmp_path / "raw")
    err = _one_line_error(capsys, ["prepare", "potsdam", str(raw), str(tmp_path / "out")])
    assert "68 of 76 needed files missing" in err and "and 65 more" in err


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_image_is_one_line_naming_the_member(potsdam_raw, tmp_path, capsys, damage):
    raw = _copy_archives(potsdam_raw, tmp_path / "raw")
    member = "2_Ortho_RGB/top_potsdam_2_11_RGB.tif"
    with zipfile.ZipFile(raw / "2_Ortho_RGB.zip") as zf:
        data = zf.read(member)
    _rewrite(raw / "2_Ortho_RGB.zip", {member: b"not a tiff" if damage == "garbage" else data[: len(data) // 2]})
    out = tmp_path / "out"
    err = _one_line_error(capsys, ["prepare", "potsdam", str(raw), str(out), "--only", "2_10", "2_11"])
    assert f"2_Ortho_RGB.zip:{member}" in err and "re-download" in err
    assert not out.exists() and not (tmp_path / "out.partial").exists()


def test_label_of_the_wrong_size_is_one_line_naming_both_files(potsdam_raw, tmp_path, capsys):
    raw = _copy_archives(potsdam_raw, tmp_path / "raw")
    member = "top_potsdam_2_13_label_noBoundary.tif"
    _rewrite(raw / "5_Labels_all_noBoundary.zip", {member: _tiff(np.zeros((600, 500, 3), np.uint8))})
    out = tmp_path / "out"
    err = _one_line_error(capsys, ["prepare", "potsdam", str(raw), str(out), "--only", "2_13"])
    assert member in err and "top_potsdam_2_13_RGB.tif" in err and "500x600" in err
    assert not out.exists()


def test_bad_ids_and_dataset_names_are_one_line(potsdam_raw, tmp_path, capsys):
    err = _one_line_error(capsys, ["prepare", "potsdam", str(potsdam_raw), str(tmp_path / "o"), "--only", "9_99"])
    assert "--only" in err and "9_99" in err
    err = _one_line_error(capsys, ["prepare", "potsdam", str(tmp_path / "nowhere"), str(tmp_path / "o")])
    assert str(tmp_path / "nowhere") in err
    with pytest.raises(ConfigError, match="unknown dataset 'potsdamm'; known datasets: potsdam, vaihingen, loveda"):
        prepare("potsdamm", potsdam_raw, tmp_path / "o")
    err = _one_line_error(capsys, ["prepare", "potsdamm", str(potsdam_raw), str(tmp_path / "o")])
    assert "unknown dataset 'potsdamm'" in err
    err = _one_line_error(capsys, ["synth", "potsdamm", str(tmp_path / "s")])
    assert "unknown dataset 'potsdamm'" in err
    assert not (tmp_path / "o").exists() and not (tmp_path / "s").exists()


def test_loose_vaihingen_files_prefer_images_under_top_and_refuse_ambiguity(tmp_path, capsys):
    archives = synthesize("vaihingen", tmp_path / "zips", tiles=1, tile_size=64)
    raw = tmp_path / "raw"
    for role, folder in (("image", "a"), ("label", "b"), ("label_full", "c")):
        with zipfile.ZipFile(archives / VAIHINGEN.archives[role].filename) as zf:
            zf.extractall(raw / folder)  # a/top/top_mosaic_09cm_area1.tif and c/top_mosaic_09cm_area1.tif
    manifest = prepare("vaihingen", raw, tmp_path / "out", only=["area1"])
    with zipfile.ZipFile(archives / VAIHINGEN.archives["image"].filename) as zf:
        image = np.asarray(Image.open(io.BytesIO(zf.read("top/top_mosaic_09cm_area1.tif"))))
    (name,) = manifest["splits"]["train"]
    np.testing.assert_array_equal(_png(tmp_path / "out/train/img" / f"{name}.png"), image)
    assert manifest["sources"][VAIHINGEN.archives["image"].filename]["fingerprint"]["path"] == "."

    (raw / "d").mkdir()
    (raw / "d" / "top_mosaic_09cm_area1_noBoundary.tif").write_bytes(
        (raw / "b" / "top_mosaic_09cm_area1_noBoundary.tif").read_bytes())
    err = _one_line_error(capsys, ["prepare", "vaihingen", str(raw), str(tmp_path / "out2"), "--only", "area1"])
    assert "2 files match top_mosaic_09cm_area1_noBoundary.tif" in err and "its own folder" in err


def test_unwritable_or_full_locations_are_one_line_before_or_as_they_happen(potsdam_raw, tmp_path, capsys):
    with read_only_folder(tmp_path / "ro") as ro:
        err = _one_line_error(capsys, ["prepare", "potsdam", str(potsdam_raw), str(ro / "out")])
        assert f"cannot write into {ro}" in err
    with small_disk(tmp_path / "disk", 1) as disk:
        err = _one_line_error(capsys, ["prepare", "potsdam", str(potsdam_raw), str(disk / "out")])
        assert str(disk / "out.partial") in err and "the disk is full" in err and "run the same command again" in err
        assert not (disk / "out").exists()


def test_a_second_prepare_into_the_same_out_is_refused_while_the_first_runs(potsdam_raw, tmp_path, capsys):
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "bemseg.cli", "prepare", "potsdam", str(potsdam_raw), str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "out.partial").exists():
            assert first.poll() is None and time.monotonic() < deadline, "the first prepare ended before converting"
            time.sleep(0.002)
        os.kill(first.pid, signal.SIGSTOP)  # the first is mid-conversion, holding OUT
        err = _one_line_error(capsys, ["prepare", "potsdam", str(potsdam_raw), str(out)])
        assert f"{out}: another bemseg process (pid {first.pid} on " in err and "wait for it to finish" in err
    finally:
        os.kill(first.pid, signal.SIGCONT)
    output, _ = first.communicate(timeout=300)
    assert first.returncode == 0, output
    assert (out / "manifest.json").is_file() and not (tmp_path / "out.partial").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
