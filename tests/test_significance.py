"""The test behind every "is this difference real?": seeds and test units, against references computed apart."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bemseg.metrics import summarize
from bemseg.reports.significance import bootstrap_weights, compare, miou_interval, miou_of, t_test

CLASSES = 5


def run_units(rng: np.random.Generator, accuracy: float, units: int = 24, pixels: int = 400) -> np.ndarray:
    """Per-unit confusion matrices of a model that labels a pixel right with probability `accuracy`."""
    out = np.zeros((units, CLASSES, CLASSES))
    for u in range(units):
        labels = rng.integers(0, CLASSES, pixels)
        right = rng.random(pixels) < accuracy
        preds = np.where(right, labels, rng.integers(0, CLASSES, pixels))
        np.add.at(out[u], (labels, preds), 1)
    return out


def test_miou_of_agrees_with_summarize():
    rng = np.random.default_rng(0)
    cm = rng.integers(0, 50, (CLASSES, CLASSES))
    cm[2, :] = cm[:, 2] = 0  # an absent class is left out, as summarize does
    assert miou_of(cm) == pytest.approx(100 * summarize(cm)["miou"])
    stacked = np.stack([cm, cm * 2, np.eye(CLASSES)])
    assert miou_of(stacked) == pytest.approx([100 * summarize(c)["miou"] for c in stacked])


def test_without_test_set_noise_it_is_scipys_paired_t_test():
    rng = np.random.default_rng(1)
    base = {s: run_units(rng, 0.6, units=1) for s in range(4)}
    other = {s: run_units(rng, 0.7, units=1) for s in range(4)}  # one unit: the bootstrap adds nothing
    result = compare(base, other)
    want = stats.ttest_rel([miou_of(other[s].sum(0)) for s in range(4)], [miou_of(base[s].sum(0)) for s in range(4)])
    assert result.se_test == 0 and result.df == pytest.approx(3)
    assert result.p == pytest.approx(want.pvalue)


def test_seed_and_test_set_variances_add_and_the_seeds_give_the_degrees_of_freedom():
    rng = np.random.default_rng(2)
    base = {s: run_units(rng, 0.5) for s in range(3)}
    other = {s: run_units(rng, 0.55) for s in range(4)}  # seed 3 is not shared
    weights = bootstrap_weights(24, resamples=500, seed=7)
    result = compare(base, other, weights)
    deltas = np.array([miou_of(other[s].sum(0)) - miou_of(base[s].sum(0)) for s in range(3)])
    replicates = np.array([np.mean([miou_of(np.tensordot(w, other[s], 1)) - miou_of(np.tensordot(w, base[s], 1))
                                    for s in range(3)]) for w in weights])
    var_seed, var_test = deltas.var(ddof=1) / 3, replicates.var(ddof=1)
    assert (result.n_seeds, result.n_units) == (3, 24) and result.delta == pytest.approx(deltas.mean())
    assert result.se_seed == pytest.approx(math.sqrt(var_seed)) and result.se_test == pytest.approx(math.sqrt(var_test))
    df = 2  # n - 1 of the three shared seeds
    assert result.df == df
    half = stats.t.ppf(0.975, df) * math.sqrt(var_seed + var_test)
    assert (result.low, result.high) == (pytest.approx(deltas.mean() - half), pytest.approx(deltas.mean() + half))
    assert result.p == pytest.approx(2 * stats.t.sf(abs(deltas.mean()) / math.sqrt(var_seed + var_test), df))


def test_one_seed_gives_no_verdict_and_no_seed_gives_nothing():
    rng = np.random.default_rng(3)
    lone = compare({0: run_units(rng, 0.5)}, {0: run_units(rng, 0.9)})
    assert lone.significant is None and math.isnan(lone.p) and lone.delta > 0 and lone.se_test > 0
    assert compare({0: run_units(rng, 0.5)}, {1: run_units(rng, 0.5)}).n_seeds == 0
    with pytest.raises(ValueError, match="different test sets"):
        compare({0: run_units(rng, 0.5, units=3)}, {0: run_units(rng, 0.5, units=4)})


@pytest.mark.parametrize("seeds", [2, 3, 5])
@pytest.mark.parametrize("test_share", [0.1, 1.0, 5.0])
def test_the_verdict_keeps_the_5_percent_level_with_few_seeds(seeds, test_share):
    """Under the null, seed noise plus a known test-set variance: p < 0.05 at most 5 % of the time.

    Welch-Satterthwaite's degrees of freedom fail this with 2 and 3 seeds when the seed part dominates (12 % and 8 %
    false positives): a seed part underestimated by chance buys them many degrees of freedom.
    """
    rng = np.random.default_rng(seeds)
    trials = 20000
    var_test = test_share / seeds  # the test part, relative to the seed part of the mean (unit seed variance)
    deltas = rng.normal(0, 1, (trials, seeds)) + rng.normal(0, math.sqrt(var_test), (trials, 1))
    p = np.array([t_test(d, var_test)[0] for d in deltas])
    assert (p < 0.05).mean() <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / trials)


def test_null_differences_are_rarely_called_real_and_large_ones_always_are():
    """Same-quality models: false positives near the 5 % level; a crippled model: always worse."""
    rng = np.random.default_rng(4)
    weights = bootstrap_weights(24, resamples=400)
    false_positive = detected = 0
    trials = 60
    for _ in range(trials):
        # every seed draws its own training quality: seed noise, plus the test units' own noise
        base = {s: run_units(rng, 0.6 + rng.normal(0, 0.02)) for s in range(3)}
        same = {s: run_units(rng, 0.6 + rng.normal(0, 0.02)) for s in range(3)}
        crippled = {s: run_units(rng, 0.2 + rng.normal(0, 0.02)) for s in range(3)}
        false_positive += bool(compare(base, same, weights).significant)
        worse = compare(base, crippled, weights)
        detected += bool(worse.significant) and worse.delta < 0 and worse.high < 0
    assert false_positive <= 0.15 * trials
    assert detected == trials


def test_a_runs_miou_interval_covers_it():
    rng = np.random.default_rng(5)
    units = run_units(rng, 0.7)
    value, low, high = miou_interval(units[None], bootstrap_weights(24, resamples=500))
    assert low < value < high and value == pytest.approx(miou_of(units.sum(0)))
    two = np.stack([units, run_units(rng, 0.5)])
    mean, low2, high2 = miou_interval(two, bootstrap_weights(24, resamples=500))
    assert mean == pytest.approx(miou_of(two.sum(1)).mean()) and low2 < mean < high2
