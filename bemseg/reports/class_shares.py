"""The paper's Figure 4: each class's share of the labelled pixels of Potsdam and Vaihingen.

Shares are computed from prepared manifests (whole tiles of train and test, so overlapping
patches are not counted twice; ignore pixels are left out). The figure is drawn on a standalone
Agg canvas (no pyplot state) and written atomically as PNG and PDF.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bemseg import atomic


def class_share_table(manifests: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per dataset and class: labelled pixels over train + test and their share of the dataset's."""
    rows = []
    for dataset, manifest in manifests.items():
        pixels = {name: sum(split[name] for split in manifest["pixels"].values())
                  for name in manifest["class_names"]}
        labelled = sum(pixels.values())
        rows += [{"dataset": dataset, "class": name, "pixels": count,
                  "share": count / labelled if labelled else float("nan")} for name, count in pixels.items()]
    return pd.DataFrame(rows, columns=["dataset", "class", "pixels", "share"])


def plot_class_shares(manifests: dict[str, dict[str, Any]], out_png: str | os.PathLike[str],
                      out_pdf: str | os.PathLike[str], label: str | None = None) -> pd.DataFrame:
    """Bar plot of the class shares (percent) per dataset; `label` is shown as a banner. Returns the table."""
    table = class_share_table(manifests)
    table["share (%)"] = table["share"] * 100
    figure = Figure(figsize=(7.5, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    sns.barplot(data=table, x="class", y="share (%)", hue="dataset", ax=axes)
    for bars in axes.containers:
        axes.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    axes.set_xlabel("")
    axes.set_ylabel("pixel share (%)")
    axes.set_xticks(axes.get_xticks(), [t.get_text().replace("_", " ") for t in axes.get_xticklabels()])
    axes.set_title("Per-class pixel share (train + test)")
    if label:
        figure.suptitle(label, color="darkred", fontsize=10, fontweight="bold",
                        bbox={"facecolor": "mistyrose", "edgecolor": "darkred", "boxstyle": "round"})
    for path, fmt in ((out_png, "png"), (out_pdf, "pdf")):
        with atomic.atomic_path(path) as tmp:
            figure.savefig(tmp, format=fmt, dpi=150)
    return table.drop(columns="share (%)")
