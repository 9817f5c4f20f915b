"""Seed statistics: mean ± sample std with n.

The paper prints one number per cell; the suite runs several seeds, so every cell it prints says
how much the number moves between seeds and how many seeds it rests on. Whether a difference
between two models is real is decided in bemseg/reports/significance.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def mean_std(values: Iterable[float | None]) -> tuple[float, float, int]:
    """(mean, sample std (ddof=1), n) over the values that are not NaN/None; std is NaN for n < 2."""
    kept = np.array([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    n = int(kept.size)
    mean = float(kept.mean()) if n else math.nan
    std = float(kept.std(ddof=1)) if n >= 2 else math.nan
    return mean, std, n
