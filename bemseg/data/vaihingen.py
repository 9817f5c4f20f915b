"""ISPRS Vaihingen (6 classes, IRRG false-colour patches of the about 2500x2000 areas)."""

from __future__ import annotations

from bemseg.data.base import PreparedDataset
from bemseg.data.catalog import VAIHINGEN


class VaihingenDataset(PreparedDataset):
    """ISPRS Vaihingen: a prepared folder or mmsegmentation's converted layout (see bemseg.data.base)."""

    info = VAIHINGEN
