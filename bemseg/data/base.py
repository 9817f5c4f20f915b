"""A dataset read from a prepared folder, or from mmsegmentation's converted layout.

Prepared folders (`bemseg prepare`, docs/ARCHITECTURE.md) list their samples in
`splits/SPLIT.txt` and store 255 = ignore. Users who converted the data with mmsegmentation have
`img_dir/[SPLIT/]NAME.png` and `ann_dir/[SPLIT/]NAME.png` with 0 = ignore and k = class k-1; that
layout is recognised when there is no manifest.json, so their data can be used as it is.

An item is `(image float32 (3, H, W) normalised for the encoder, mask int64 (H, W), 255 = ignore)`;
training items are padded after normalisation (image 0, mask 255), as mmsegmentation does.
Training items are augmented with `numpy.random.default_rng(seed)` for `dataset[index, seed]`
(`dataset[index]` uses seed = index), so augmentation never depends on worker processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from bemseg.atomic import read_json_or_none
from bemseg.data.catalog import DatasetInfo
from bemseg.data.imageio import read_image
from bemseg.data.labels import decode_zero_ignore
from bemseg.data.normalization import NORMS, normalize
from bemseg.data.transforms import TrainPipeline
from bemseg.errors import ConfigError, DataError

#: mmsegmentation names the evaluation split `val`.
_MMSEG_SPLIT = {"train": "train", "test": "val"}


def _mmseg_folder(root: Path, kind: str, split: str) -> Path:
    """`root/kind/SPLIT` (or mmsegmentation's `val` for test) when present, else the flat `root/kind`."""
    for name in (split, _MMSEG_SPLIT[split]):
        if (root / kind / name).is_dir():
            return root / kind / name
    return root / kind


class PreparedDataset(Dataset):
    """Samples of one split of a prepared (or mmsegmentation-converted) dataset."""

    info: ClassVar[DatasetInfo]

    def __init__(self, root: str | Path, split: str = "train", *, norm: str = "clip", augment: bool | None = None,
                 crop_size: int = 512, resize_scale: int | None = None,
                 ratio_range: tuple[float, float] = (0.5, 2.0), cat_max_ratio: float = 0.75) -> None:
        if split not in self.info.splits:
            raise ConfigError(f"split '{split}' is not allowed; allowed values: {', '.join(self.info.splits)}")
        if norm not in NORMS:
            raise ConfigError(f"norm '{norm}' is not allowed; allowed values: {', '.join(NORMS)}")
        self.root, self.split, self.norm = Path(root), split, norm
        self.manifest: dict[str, Any] | None = None
        manifest_path = self.root / "manifest.json"
        if manifest_path.is_file():
            self.manifest = read_json_or_none(manifest_path, f"delete {self.root} and run `bemseg prepare` again")
            if self.manifest.get("dataset") != self.info.name:
                raise ConfigError(f"{manifest_path}: holds {self.manifest.get('dataset')}, not {self.info.name}; "
                                  "pass the matching dataset name or folder")
            self.layout = "prepared"
            self.names = (self.root / "splits" / f"{split}.txt").read_text().split()
            self._img_dir, self._ann_dir = self.root / split / "img", self.root / split / "ann"
        elif (self.root / "img_dir").is_dir() and (self.root / "ann_dir").is_dir():
            self.layout = "mmseg"
            self._img_dir = _mmseg_folder(self.root, "img_dir", split)
            self._ann_dir = _mmseg_folder(self.root, "ann_dir", split)
            self.names = sorted(p.stem for p in self._img_dir.glob("*.png"))
            if not self.names:
                raise DataError(f"{self._img_dir}: no .png images for the {split} split of mmsegmentation's layout; "
                                "check the folder")
        else:
            raise DataError(f"{self.root}: neither a prepared dataset (no manifest.json) nor mmsegmentation's "
                            f"layout (img_dir/, ann_dir/); run `bemseg prepare {self.info.name} RAW {self.root}`")
        self.augment = split == "train" if augment is None else augment
        self.pipeline = TrainPipeline(crop_size, resize_scale or self.info.resize_scale, tuple(ratio_range),
                                      cat_max_ratio, norm=norm)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.info.class_names

    @property
    def palette(self) -> tuple[tuple[int, int, int], ...]:
        return self.info.palette

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    def __len__(self) -> int:
        return len(self.names)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The stored sample: uint8 HxWx3 image and uint8 HxW mask (255 = ignore), unaugmented."""
        name = self.names[index]
        image_path, mask_path = self._img_dir / f"{name}.png", self._ann_dir / f"{name}.png"
        image = read_image(image_path, rgb=True)
        mask = read_image(mask_path, rgb=False)
        if self.layout == "mmseg":
            mask = decode_zero_ignore(mask, self.num_classes, str(mask_path))
        if mask.shape != image.shape[:2]:
            raise DataError(f"{mask_path} is {mask.shape[1]}x{mask.shape[0]} but {image_path} is "
                            f"{image.shape[1]}x{image.shape[0]}; prepare the dataset again")
        return image, mask

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        index = range(len(self))[index]  # IndexError out of range; negative indices count from the end
        image, mask = self.load(index)
        if self.augment:
            return self.pipeline(image, mask, np.random.default_rng(index if seed is None else seed))
        return normalize(image, self.norm), torch.from_numpy(mask.astype(np.int64))
