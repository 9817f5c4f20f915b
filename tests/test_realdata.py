"""The real samples in ../shared/realdata load with the right shapes, types and class mapping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from bemseg.data import build_dataset
from bemseg.data.prepare import prepare


def test_real_loveda_pairs_prepare_and_load(realdata, tmp_path):
    manifest = prepare("loveda", realdata / "loveda", tmp_path / "loveda", only=["0", "1", "2"])
    assert manifest["splits"] == {"train": ["0", "1", "2"], "test": []}
    assert manifest["synthetic"] is False
    source = manifest["sources"]["Train.zip"]["fingerprint"]
    assert (source["kind"], source["path"], source["files"]) == ("folder", "Train", 6)
    dataset = build_dataset("loveda", tmp_path / "loveda", "train", augment=False)
    assert len(dataset) == 3
    for index, name in enumerate(dataset.names):
        image, mask = dataset[index]
        assert image.dtype == torch.float32 and image.shape == (3, 1024, 1024)
        assert mask.dtype == torch.int64 and mask.shape == (1024, 1024)
        assert set(mask.unique().tolist()) <= {0, 1, 2, 3, 4, 5, 6, 255}
        original = np.asarray(Image.open(realdata / "loveda/Train/Rural/masks_png" / f"{name}.png")).astype(np.int64)
        mapped = mask.numpy()
        np.testing.assert_array_equal(mapped[original > 0], original[original > 0] - 1)
        assert (mapped[original == 0] == 255).all()
    crop_image, crop_mask = build_dataset("loveda", tmp_path / "loveda", "train", crop_size=512)[0, 3]
    assert crop_image.shape == (3, 512, 512) and crop_mask.shape == (512, 512)


@pytest.mark.parametrize(("dataset", "name"), [("potsdam", "2_10_0_0_512_512"), ("vaihingen", "area1_0_0_512_512")])
def test_real_isprs_crops_load_from_mmsegmentations_layout(realdata, dataset, name):
    data = build_dataset(dataset, realdata / dataset, "train", augment=False)
    assert data.layout == "mmseg" and data.names == [name]
    image, mask = data[0]
    assert image.dtype == torch.float32 and image.shape == (3, 512, 512)
    assert mask.dtype == torch.int64 and mask.shape == (512, 512)
    assert set(mask.unique().tolist()) <= {0, 1, 2, 3, 4, 5, 255}
    stored = np.asarray(Image.open(realdata / dataset / "ann_dir" / f"{name}.png")).astype(np.int64)
    np.testing.assert_array_equal(mask.numpy(), np.where(stored == 0, 255, stored - 1))
    assert (mask != 255).float().mean() > 0.5
