"""How numbers are written into report cells: one format for every table, so they parse back alike.

Missing numbers (None or NaN) are empty cells; percentages and deltas have two decimals as in the
paper; a seed summary reads `mean ± std (n)`, or `mean (1)` for a single seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from bemseg.reports.stats import mean_std


def missing(value: float | None) -> bool:
    """True for None and NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def number_cell(value: float | None, digits: int = 2) -> str:
    """`value` with `digits` decimals, or an empty cell."""
    return "" if missing(value) else f"{value:.{digits}f}"


def signed_cell(value: float | None, digits: int = 2) -> str:
    """`value` with an explicit sign (a difference), or an empty cell."""
    return "" if missing(value) else f"{value:+.{digits}f}"


def significant_cell(value: float | None) -> str:
    """Three significant digits, whole numbers from 100 (hours, FPS: magnitudes vary by orders between devices)."""
    if missing(value):
        return ""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:#.3g}".rstrip(".")


def ratio_cell(value: float | None, reference: float | None) -> str:
    """`value / reference` with two decimals, or an empty cell when either is missing or the reference is 0."""
    if missing(value) or missing(reference) or reference == 0:
        return ""
    return f"{value / reference:.2f}"


def interval_cell(value: float | None, low: float | None, high: float | None) -> str:
    """A signed difference with its interval, `+1.23 [-0.50, +2.96]`; the value alone without an interval."""
    if missing(value):
        return ""
    if missing(low) or missing(high):
        return signed_cell(value)
    return f"{value:+.2f} [{low:+.2f}, {high:+.2f}]"


def p_cell(p: float | None) -> str:
    """A p-value with three decimals, `<0.001` below that, or an empty cell."""
    if missing(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def summary_cell(mean: float, std: float, n: int) -> str:
    """`mean ± std (n)`, `mean (1)` for a single value, empty for none."""
    if n == 0 or missing(mean):
        return ""
    if n == 1:
        return f"{mean:.2f} ({n})"
    return f"{mean:.2f} ± {std:.2f} ({n})"


def seed_cell(values: Iterable[float]) -> str:
    """The `summary_cell` of the seeds' values, NaN left out."""
    return summary_cell(*mean_std(values))
