"""Datasets: the catalogue of facts, synthetic archives, conversion, and one dataset class per dataset.

`build_dataset` imports the dataset classes (and torch) on first use, so importing `bemseg.data`
for the catalogue or the converters stays cheap.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bemseg.data.catalog import get_dataset_info

if TYPE_CHECKING:
    from bemseg.data.base import PreparedDataset

#: Catalogue name -> "module:class" of its dataset class.
DATASET_CLASSES = {
    "potsdam": "bemseg.data.potsdam:PotsdamDataset",
    "vaihingen": "bemseg.data.vaihingen:VaihingenDataset",
    "loveda": "bemseg.data.loveda:LoveDADataset",
}


def build_dataset(name: str, root: str | Path, split: str, **options: Any) -> PreparedDataset:
    """The dataset class of catalogue entry `name` on `root`'s `split` (options: see PreparedDataset)."""
    info = get_dataset_info(name)
    module, cls = DATASET_CLASSES[info.name].split(":")
    return getattr(importlib.import_module(module), cls)(root, split, **options)
