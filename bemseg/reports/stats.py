"""Seed statistics: mean ± sample std with n, and the paired test behind every ablation delta.

The paper prints one number per cell; the suite runs several seeds, so every cell it prints says
how much the number moves between seeds and how many seeds it rests on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats


def mean_std(values: Iterable[float | None]) -> tuple[float, float, int]:
    """(mean, sample std (ddof=1), n) over the values that are not NaN/None; std is NaN for n < 2."""
    kept = np.array([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    n = int(kept.size)
    mean = float(kept.mean()) if n else math.nan
    std = float(kept.std(ddof=1)) if n >= 2 else math.nan
    return mean, std, n


@dataclass(frozen=True)
class PairedResult:
    """other − base over the shared seeds: mean and sample std of the deltas, paired t, two-sided p, n."""

    delta_mean: float
    delta_std: float
    t: float
    p: float
    n: int


def paired_test(base: Mapping[int, float], other: Mapping[int, float]) -> PairedResult:
    """Paired t-test of `other` against `base` over the seeds both have (scipy.stats.ttest_rel).

    Paired, not two-sample: runs with the same seed see the same data order and start from the same
    initial weights for the parts the models share, so most seed-to-seed noise cancels in the
    per-seed difference. NaN values drop their seed; with n < 2 (or identical deltas) t and p are NaN.
    """
    seeds = sorted(s for s in set(base) & set(other)
                   if not (math.isnan(base[s]) or math.isnan(other[s])))
    first = np.array([base[s] for s in seeds], dtype=np.float64)
    second = np.array([other[s] for s in seeds], dtype=np.float64)
    delta_mean, delta_std, n = mean_std(second - first)
    t = p = math.nan
    if n >= 2 and delta_std > 0:
        result = stats.ttest_rel(second, first)
        t, p = float(result.statistic), float(result.pvalue)
    return PairedResult(delta_mean, delta_std, t, p, n)
