"""LoveDA (7 classes, whole 1024x1024 images; the test split is LoveDA's Val)."""

from __future__ import annotations

from bemseg.data.base import PreparedDataset
from bemseg.data.catalog import LOVEDA


class LoveDADataset(PreparedDataset):
    """LoveDA: a prepared folder or mmsegmentation's converted layout (see bemseg.data.base)."""

    info = LOVEDA
