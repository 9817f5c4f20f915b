"""Is a difference in mIoU between two models real? Judged against seed noise and test-set noise together.

Two sources make a measured difference move: training (another seed gives other weights) and the
test set (other test images would give other scores). The suite estimates both and adds them:

- per seed s shared by both models, the difference d_s = mIoU(other, s) - mIoU(base, s) on the whole
  test set (runs with one seed share the data order, so the pairing removes that part of the noise);
  the seed part of the variance of their mean is var_s(d) / n;
- the test-set part is the variance of the mean difference over B bootstrap replicates of the test
  set: test units (images or tiles, or fixed blocks of them; `eval.unit_size`) drawn with
  replacement, the same draw for every run of both models (paired over units too), each run's mIoU
  recomputed from the summed per-unit confusion matrices;
- t = mean(d) / sqrt(seed part + test part), referred to Student's t with n - 1 degrees of freedom
  (those of the seed part; the bootstrap part is treated as known), gives a two-sided p and a 95 %
  confidence interval of the difference, the effect size reported with it. Welch-Satterthwaite's
  degrees of freedom would be larger, but they trust the seed part's own estimate: with few seeds,
  a seed part underestimated by chance then gives many degrees of freedom and a narrow interval
  (simulated false-positive rate 12 % with 2 seeds, 8 % with 3). n - 1 never exceeds the 5 % level.

The test is named in every report that uses it (`TEST_NAME`). With one seed the seed part cannot be
estimated and no verdict is given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats

TEST_NAME = ("paired t-test over seeds (n - 1 degrees of freedom) with the per-unit bootstrap variance of the "
             "test set added to its standard error")
LEVEL = 0.95
RESAMPLES = 2000


@dataclass(frozen=True)
class Difference:
    """other - base in mIoU points: mean over shared seeds, its 95 % interval and the test's verdict."""

    delta: float
    low: float
    high: float
    p: float
    se_seed: float
    se_test: float
    df: float
    n_seeds: int
    n_units: int

    @property
    def significant(self) -> bool | None:
        """Whether the interval excludes 0 (p < 0.05); None when there are fewer than 2 shared seeds."""
        if self.n_seeds < 2 or math.isnan(self.p):
            return None
        return self.p < 1 - LEVEL


def miou_of(confusion: np.ndarray) -> np.ndarray:
    """mIoU in percent of confusion matrices (..., C, C); classes absent from label and prediction left out."""
    confusion = np.asarray(confusion, dtype=np.float64)
    hits = np.diagonal(confusion, axis1=-2, axis2=-1)
    both = confusion.sum(-1) + confusion.sum(-2)
    present = both > 0
    iou = np.where(present, hits / np.where(present, both - hits, 1.0), 0.0)
    count = present.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, 100.0 * iou.sum(-1) / count, np.nan)


def bootstrap_weights(units: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """(resamples, units) counts: how often each test unit is drawn in each replicate."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(units, np.full(units, 1.0 / units), size=resamples).astype(np.float64)


def miou_interval(runs: np.ndarray, weights: np.ndarray) -> tuple[float, float, float]:
    """Mean mIoU (percent) of runs' per-unit confusion matrices (S, U, C, C) and its 95 % test-set interval.

    The interval is the percentile interval of the mean over the bootstrap replicates of the test units:
    how much the number would move on another test set of the same kind, the seeds held fixed.
    """
    runs = np.asarray(runs, dtype=np.float64)
    replicates = miou_of(np.einsum("bu,sucd->bscd", weights, runs)).mean(axis=1)
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.nanpercentile(replicates, [tail, 100 - tail])
    return float(miou_of(runs.sum(1)).mean()), float(low), float(high)


def compare(base: Mapping[int, np.ndarray], other: Mapping[int, np.ndarray],
            weights: np.ndarray | None = None) -> Difference:
    """other - base over the seeds both have; each value is a run's per-unit confusion matrices (U, C, C)."""
    seeds = sorted(set(base) & set(other))
    if not seeds:
        return Difference(math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, 0, 0)
    first = np.stack([np.asarray(base[s], dtype=np.float64) for s in seeds])
    second = np.stack([np.asarray(other[s], dtype=np.float64) for s in seeds])
    if first.shape != second.shape:
        raise ValueError(f"compare: per-unit confusion matrices of shape {first.shape[1:]} and {second.shape[1:]} "
                         "come from different test sets")
    units = first.shape[1]
    per_seed = miou_of(second.sum(1)) - miou_of(first.sum(1))
    delta = float(per_seed.mean())
    weights = bootstrap_weights(units) if weights is None else weights
    replicates = (miou_of(np.einsum("bu,sucd->bscd", weights, second))
                  - miou_of(np.einsum("bu,sucd->bscd", weights, first))).mean(axis=1)
    var_test = float(np.nanvar(replicates, ddof=1)) if units > 1 else 0.0
    n = len(seeds)
    if n < 2:
        return Difference(delta, math.nan, math.nan, math.nan, math.nan, math.sqrt(var_test), math.nan, n, units)
    p, half, var_seed, df = t_test(per_seed, var_test)
    return Difference(delta, delta - half, delta + half, p, math.sqrt(var_seed), math.sqrt(var_test), df, n, units)


def t_test(per_seed: np.ndarray, var_test: float) -> tuple[float, float, float, int]:
    """The test on per-seed differences whose mean also carries the test-set variance `var_test`.

    Returns the two-sided p, the half-width of the 95 % interval, the seed part of the variance and the
    degrees of freedom (n - 1 of the n seeds).
    """
    n = len(per_seed)
    var_seed = float(np.var(per_seed, ddof=1)) / n
    var, df, delta = var_seed + var_test, n - 1, float(np.mean(per_seed))
    if var == 0:
        return (1.0 if delta == 0 else 0.0), 0.0, var_seed, df
    scale = math.sqrt(var)
    return (float(2 * stats.t.sf(abs(delta) / scale, df)), float(stats.t.ppf(0.5 + LEVEL / 2, df) * scale),
            var_seed, df)
