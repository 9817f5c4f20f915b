"""The warning every report carries when its numbers cannot be compared with the paper's.

Runs on synthetic data, or with randomly initialised encoders (no pretrained weight files), test
the pipeline, not the method; tables and figures made from them say so on their first line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the workflow imports this module at parse time: keep it free of pandas
    import pandas as pd

SYNTHETIC_LABEL = "synthetic data, random encoders: not comparable to the paper"
RANDOM_WEIGHTS_PREFIX = "random initialisation"


def label_for(synthetic: bool, random_encoders: bool) -> str | None:
    """The label for results made on synthetic data and/or with random encoders; None when neither holds."""
    if synthetic and random_encoders:
        return SYNTHETIC_LABEL
    if synthetic:
        return "synthetic data: not comparable to the paper"
    if random_encoders:
        return "random encoders: not comparable to the paper"
    return None


def report_label(runs: pd.DataFrame) -> str | None:
    """The label for a report made from `runs` (columns `synthetic`, `weights`), or None for real, pretrained runs."""
    if runs.empty:
        return None
    return label_for(synthetic=bool(runs["synthetic"].eq(True).any()),
                     random_encoders=bool(runs["weights"].astype(str).str.startswith(RANDOM_WEIGHTS_PREFIX).any()))
