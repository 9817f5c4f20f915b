"""ISPRS Potsdam (6 classes, RGB patches of the 6000x6000 tiles)."""

from __future__ import annotations

from bemseg.data.base import PreparedDataset
from bemseg.data.catalog import POTSDAM


class PotsdamDataset(PreparedDataset):
    """ISPRS Potsdam: a prepared folder or mmsegmentation's converted layout (see bemseg.data.base)."""

    info = POTSDAM
