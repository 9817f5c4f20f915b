"""Dataset classes and the training augmentation: items, determinism, crops, layouts, factory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bemseg.data import build_dataset
from bemseg.data.loveda import LoveDADataset
from bemseg.data.normalization import NORMS, normalize
from bemseg.data.potsdam import PotsdamDataset
from bemseg.data.prepare import prepare
from bemseg.data.synth import synthesize
from bemseg.data.transforms import (
    TrainPipeline,
    pad,
    photometric_distortion,
    random_crop,
    random_flip,
    random_resize,
)
from bemseg.data.vaihingen import VaihingenDataset
from bemseg.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def potsdam_root(tmp_path_factory) -> Path:
    """A prepared synthetic Potsdam: 2 train tiles of 300x300 (one patch each), 2 whole test tiles."""
    base = tmp_path_factory.mktemp("potsdam")
    prepare("potsdam", synthesize("potsdam", base / "raw", tiles=2, tile_size=300), base / "prepared")
    return base / "prepared"


def test_training_items_are_augmented_crops(potsdam_root):
    dataset = PotsdamDataset(potsdam_root, "train")
    assert len(dataset) == 2 and dataset.names == ["2_10_0_0_300_300", "2_11_0_0_300_300"]
    assert (dataset.num_classes, dataset.class_names[0], dataset.palette[1]) == (6, "impervious_surface", (0, 0, 255))
    assert dataset.manifest["dataset"] == "potsdam" and dataset.augment
    for seed in range(6):
        image, mask = dataset[0, seed]
        assert image.dtype == torch.float32 and image.shape == (3, 512, 512)
        assert mask.dtype == torch.int64 and mask.shape == (512, 512)
        assert set(mask.unique().tolist()) <= {0, 1, 2, 3, 4, 5, 255}


def test_the_same_index_and_seed_give_identical_items(potsdam_root):
    dataset = PotsdamDataset(potsdam_root, "train", crop_size=128)
    first, again, other = dataset[1, 42], dataset[1, 42], dataset[1, 43]
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])
    assert first[0].shape == (3, 128, 128) and first[1].shape == (128, 128)
    plain = dataset[1]
    assert torch.equal(plain[0], dataset[1, 1][0])  # an int index uses its own value as seed
    assert torch.equal(dataset[-1][1], dataset[1, 1][1])


def test_test_items_are_whole_unaugmented_tiles(potsdam_root):
    dataset = PotsdamDataset(potsdam_root, "test", norm="imagenet")
    assert not dataset.augment and dataset.names == ["2_13", "2_14"]
    image, mask = dataset[0, 5]
    stored = np.array(Image.open(potsdam_root / "test/img/2_13.png"))
    assert torch.equal(image, normalize(stored, "imagenet"))
    np.testing.assert_array_equal(mask.numpy(), np.asarray(Image.open(potsdam_root / "test/ann/2_13.png")))


def test_mmsegmentation_layout_shifts_labels_and_maps_val_to_test(tmp_path):
    ann = np.array([[0, 1, 2, 3], [4, 5, 6, 1]] * 2, dtype=np.uint8)
    for split in ("train", "val"):
        (tmp_path / "img_dir" / split).mkdir(parents=True)
        (tmp_path / "ann_dir" / split).mkdir(parents=True)
        Image.fromarray(np.full((4, 4, 3), 9, np.uint8)).save(tmp_path / "img_dir" / split / f"area{split}_0.png")
        Image.fromarray(ann).save(tmp_path / "ann_dir" / split / f"area{split}_0.png")
    dataset = VaihingenDataset(tmp_path, "test")
    assert dataset.layout == "mmseg" and dataset.names == ["areaval_0"] and dataset.manifest is None
    _, mask = dataset[0]
    assert mask.tolist() == [[255, 0, 1, 2], [3, 4, 5, 0]] * 2
    for path in (tmp_path / "img_dir" / "val").iterdir():
        path.unlink()
    with pytest.raises(DataError, match=r"img_dir/val: no .png images for the test split"):
        VaihingenDataset(tmp_path, "test")


def test_unusable_roots_and_names_are_one_line_errors(potsdam_root, tmp_path):
    with pytest.raises(DataError, match="neither a prepared dataset"):
        PotsdamDataset(tmp_path, "train")
    with pytest.raises(ConfigError, match="holds potsdam, not loveda"):
        LoveDADataset(potsdam_root, "train")
    with pytest.raises(ConfigError, match="split 'val'"):
        PotsdamDataset(potsdam_root, "val")
    with pytest.raises(ConfigError, match="unknown dataset 'isprs'"):
        build_dataset("isprs", potsdam_root, "train")


def test_factory_maps_catalog_names_to_classes(potsdam_root):
    dataset = build_dataset("potsdam", potsdam_root, "train", crop_size=64, augment=False)
    assert type(dataset) is PotsdamDataset and not dataset.augment
    assert dataset[0][0].shape == (3, 300, 300)


def _halves(size: int = 100) -> np.ndarray:
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[:, size // 2:] = 1
    return mask


def test_random_crop_respects_cat_max_ratio_when_possible():
    mask = _halves()
    mask[:10] = 255  # ignore pixels do not count
    image = np.zeros((100, 100, 3), np.uint8)

    def balanced(cat_max_ratio: float) -> int:
        hits = 0
        for seed in range(60):
            _, crop = random_crop(image, mask, np.random.default_rng(seed), 40, cat_max_ratio)
            assert crop.shape == (40, 40)
            counts = np.bincount(crop[crop != 255], minlength=2)
            hits += counts.max() / counts.sum() < 0.75
        return hits

    assert balanced(1.0) < 35  # unconstrained: about a third of the crops straddle both classes
    assert balanced(0.75) >= 57


def test_random_resize_sets_the_short_side_and_keeps_the_aspect():
    image, mask = np.zeros((200, 100, 3), np.uint8), np.zeros((200, 100), np.uint8)
    for seed in range(5):
        ratio = np.random.default_rng(seed).uniform(0.5, 2.0)
        out_image, out_mask = random_resize(image, mask, np.random.default_rng(seed), 512, (0.5, 2.0))
        factor = 512 * ratio / 100
        assert out_mask.shape == (int(200 * factor + 0.5), int(100 * factor + 0.5))
        assert abs(out_mask.shape[1] - 512 * ratio) <= 1
        assert out_image.shape[:2] == out_mask.shape


def test_nearest_mask_resize_keeps_labels_and_pad_uses_ignore():
    mask = _halves(8)
    _, big = random_resize(np.zeros((8, 8, 3), np.uint8), mask, np.random.default_rng(0), 16, (1.0, 1.0))
    assert big.shape == (16, 16) and set(np.unique(big)) == {0, 1} and (big[:, :8] == 0).all()
    image, padded = pad(torch.ones(3, 16, 16), torch.from_numpy(big.astype(np.int64)), 20)
    assert padded.shape == (20, 20) and (padded[16:] == 255).all() and (padded[:, 16:] == 255).all()
    assert image.shape == (3, 20, 20) and (image[:, 16:] == 0).all() and (image[:, :16, :16] == 1).all()


def test_photometric_distortion_is_seeded_and_changes_colours():
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    outs = [photometric_distortion(image, np.random.default_rng(s)) for s in (7, 7, 8)]
    assert outs[0].dtype == np.uint8 and outs[0].shape == image.shape
    np.testing.assert_array_equal(outs[0], outs[1])
    assert any(not np.array_equal(photometric_distortion(image, np.random.default_rng(s)), image) for s in range(4))


def test_pipeline_output_is_always_the_crop_size():
    pipeline = TrainPipeline(crop_size=64, resize_scale=32)
    image, mask = np.zeros((50, 70, 3), np.uint8), _halves(50)[:, :35].repeat(2, axis=1)
    for seed in range(5):
        out_image, out_mask = pipeline(image, mask, np.random.default_rng(seed))
        assert out_image.shape == (3, 64, 64) and out_mask.shape == (64, 64)
        assert out_image.dtype == torch.float32 and out_mask.dtype == torch.int64


@pytest.mark.parametrize("dataset", ["potsdam", "vaihingen", "loveda"])
@pytest.mark.parametrize("norm", ["clip", "imagenet"])
def test_padding_comes_after_normalisation_for_every_dataset(tmp_path_factory, dataset, norm):
    """Crops smaller than the crop size (resize ratio < 1) are padded with exactly 0 (the mean colour) and 255."""
    base = tmp_path_factory.mktemp(dataset)
    root = base / "prepared"
    if not root.exists():
        prepare(dataset, synthesize(dataset, base / "raw", tiles=1, tile_size=64), root, patch_size=64)
    crop = 96  # larger than every resized 64x64 patch at ratio <= 1.5 of a 64 scale
    items = build_dataset(dataset, root, "train", norm=norm, crop_size=crop, resize_scale=64, ratio_range=(0.5, 1.0))
    stored = items.load(0)[1].shape
    for seed in range(4):
        image, mask = items[0, seed]
        assert image.shape == (3, crop, crop) and mask.shape == (crop, crop)
        factor = 64 * np.random.default_rng(seed).uniform(0.5, 1.0) / min(stored)  # the pipeline's first draw
        rows, cols = (int(side * factor + 0.5) for side in stored)
        assert rows < crop and cols < crop
        assert (image[:, rows:, :] == 0).all() and (image[:, :, cols:] == 0).all()
        assert (mask[rows:, :] == 255).all() and (mask[:, cols:] == 255).all()
        assert (image[:, :rows, :cols] != 0).float().mean() > 0.99, "the crop itself is normalised image content"


def test_flip_is_horizontal_with_probability_one_half():
    image = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    mask = np.array([[0, 1], [2, 3]], np.uint8)
    flips = 0
    for seed in range(400):
        out_image, out_mask = random_flip(image, mask, np.random.default_rng(seed))
        flipped = not np.array_equal(out_mask, mask)
        flips += flipped
        if flipped:
            np.testing.assert_array_equal(out_mask, mask[:, ::-1])
            np.testing.assert_array_equal(out_image, image[:, ::-1])
    assert 160 < flips < 240


@pytest.mark.parametrize(("norm", "mean", "std"), [
    ("clip", (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),  # CLIP's preprocessing
    ("imagenet", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
])
def test_normalisation_uses_each_encoders_statistics(norm, mean, std):
    np.testing.assert_allclose(NORMS[norm], (np.array(mean) * 255, np.array(std) * 255), rtol=1e-7)
    mean_colour = np.broadcast_to(np.round(np.array(mean) * 255).astype(np.uint8), (4, 4, 3))
    assert normalize(mean_colour, norm).abs().max() < 0.01  # the mean colour normalises to (about) 0
    white = normalize(np.full((1, 1, 3), 255, np.uint8), norm)[:, 0, 0]
    torch.testing.assert_close(white, torch.tensor([(1 - m) / s for m, s in zip(mean, std)], dtype=torch.float32))
