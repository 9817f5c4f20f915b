"""The paper's Figures 5-7 from our runs (predictions side by side, IoU per class, the λ1/λ2 study), and
the training loss curves of every model.

Each figure is drawn on a standalone Agg canvas (no pyplot state), carries the not-comparable
label as a banner when there is one, is written atomically as PNG and PDF, and is returned so a
caller (or a test) can inspect what was drawn.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from PIL import Image

from bemseg import atomic
from bemseg.data.catalog import DATASETS
from bemseg.errors import DataError
from bemseg.reports.cells import missing
from bemseg.reports.paper import PaperNumbers, consistency_flags
from bemseg.reports.runs import seed_scores, select
from bemseg.reports.stats import mean_std
from bemseg.reports.tables import dataset_title

_PREDICTION = re.compile(r"(?P<name>.+)_(?:image|label|pred)\.png")


def _figure(width: float, height: float, label: str | None) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    if label:
        figure.suptitle(label, color="darkred", fontsize=10, fontweight="bold",
                        bbox={"facecolor": "mistyrose", "edgecolor": "darkred", "boxstyle": "round"})
    return figure


def _save(figure: Figure, out_png: str | os.PathLike[str], out_pdf: str | os.PathLike[str]) -> None:
    for path, fmt in ((out_png, "png"), (out_pdf, "pdf")):
        with atomic.atomic_path(path) as tmp:
            figure.savefig(tmp, format=fmt, dpi=150)


def _readable(name: str) -> str:
    return name.replace("_", " ")


def _prediction_folders(runs: pd.DataFrame, dataset: str, models: list[str]) -> dict[str, Path]:
    """model -> predictions folder of its lowest-seed main run on `dataset` (models without runs are left out)."""
    folders = {}
    for model in models:
        rows = select(runs, dataset, model)
        if len(rows):
            folders[model] = Path(rows.loc[rows["seed"].idxmin(), "predictions_dir"])
    return folders


def plot_predictions(runs: pd.DataFrame, dataset: str, models: list[str], out_png: str | os.PathLike[str],
                     out_pdf: str | os.PathLike[str], label: str | None, samples: int = 3) -> Figure:
    """Figure 5: one row per test image (image, label, each model's prediction); a missing file says "missing"."""
    folders = _prediction_folders(runs, dataset, models)
    found = {m.group("name") for folder in folders.values() if folder.is_dir()
             for m in map(_PREDICTION.fullmatch, os.listdir(folder)) if m}
    names = sorted(found)[:samples]
    if not names:
        raise DataError(f"no prediction images for {dataset} ({', '.join(models)}) under "
                        f"{', '.join(map(str, folders.values())) or 'any run'}; evaluate with eval.num_figures > 0")
    headers = ["image", "label", *models]
    figure = _figure(2.0 * len(headers), 2.0 * len(names) + 1.2, label)
    grid = figure.subplots(len(names), len(headers), squeeze=False)
    for row, name in enumerate(names):
        for col, header in enumerate(headers):
            axes = grid[row][col]
            kind, candidates = ("pred", [folders.get(header)]) if col >= 2 else (header, list(folders.values()))
            path = next((f / f"{name}_{kind}.png" for f in candidates if f and (f / f"{name}_{kind}.png").is_file()),
                        None)
            if path is None:
                axes.text(0.5, 0.5, "missing", ha="center", va="center", fontsize=11, color="gray",
                          transform=axes.transAxes)
                axes.set_box_aspect(1)
            else:
                with Image.open(path) as image:
                    axes.imshow(np.asarray(image.convert("RGB")))
            axes.set_xticks([])
            axes.set_yticks([])
            if row == 0:
                axes.set_title(header, fontsize=10)
        grid[row][0].set_ylabel(name, fontsize=9)
    info = DATASETS[dataset]
    handles = [Patch(facecolor=np.asarray(rgb) / 255, edgecolor="black", label=_readable(c))
               for c, rgb in zip(info.class_names, info.palette)]
    figure.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=9, frameon=False)
    _save(figure, out_png, out_pdf)
    return figure


def plot_class_iou(runs: pd.DataFrame, dataset: str, models: list[str], paper: PaperNumbers,
                   out_png: str | os.PathLike[str], out_pdf: str | os.PathLike[str], label: str | None) -> Figure:
    """Figure 6: IoU per class, one bar per model (mean over seeds, error bar = sample std), paper values as markers."""
    classes = list(DATASETS[dataset].class_names)
    stats = pd.DataFrame([(model, name, *mean_std(seed_scores(select(runs, dataset, model), name).values()))
                          for model in models for name in classes], columns=["model", "class", "mean", "std", "n"])
    drawn = [m for m in models if stats.loc[stats["model"] == m, "n"].sum() > 0]
    if not drawn:
        raise DataError(f"no runs of {', '.join(models)} on {dataset} to plot")
    stats = stats[stats["model"].isin(drawn)].set_index(["model", "class"])
    figure = _figure(max(7.5, 3.0 + 0.25 * len(classes) * len(drawn)), 4.6, label)
    axes = figure.add_subplot()
    sns.barplot(data=stats.reset_index(), x="class", y="mean", hue="model", order=classes, hue_order=drawn,
                errorbar=None, ax=axes)
    paper_iou = paper.class_iou(dataset)
    bars, paper_points = [], []
    for model, group in zip(drawn, list(axes.containers)):
        for bar in group:
            centre = bar.get_x() + bar.get_width() / 2
            name = classes[round(centre)]
            bars.append((centre, bar.get_height(), stats.loc[(model, name), "std"]))
            value = paper_iou.get(model, {}).get(name, math.nan)
            if not missing(value):
                paper_points.append((centre, value))
    centres, heights, stds = zip(*bars)
    axes.errorbar(centres, heights, yerr=[0.0 if missing(s) else s for s in stds], fmt="none", color="black",
                  capsize=2, linewidth=1)
    if paper_points:
        axes.scatter(*zip(*paper_points), marker="D", s=22, color="black", zorder=4, label="paper")
    axes.set_xticks(range(len(classes)), [_readable(c) for c in classes])
    axes.set_xlabel("")
    axes.set_ylabel("IoU (%)")
    axes.set_title(f"IoU per class on {dataset_title(dataset)} (mean ± std over seeds; ◆ = paper)")
    axes.set_ylim(0, 100)
    axes.legend(title="model", fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _save(figure, out_png, out_pdf)
    return figure


def _lambda_points(runs: pd.DataFrame, study: dict[str, Any]) -> pd.DataFrame:
    """lambda1, lambda2, seed, miou (%) of the study model's lambda and main runs; settings absent from a record
    are the study's fixed values (the default point), and a setting run twice with one seed counts once."""
    rows = runs[(runs["dataset"] == study["dataset"]) & (runs["model"] == study["model"])
                & runs["study"].isin(["main", "lambda"])].sort_values("study", key=lambda s: s != "main")
    if rows.empty:
        raise DataError(f"no main or lambda runs of {study['model']} on {study['dataset']} for the λ study")
    points = pd.DataFrame({
        "lambda1": [study["lambda1_fixed"] if missing(v) else float(v) for v in rows["lambda1"]],
        "lambda2": [study["lambda2_fixed"] if missing(v) else float(v) for v in rows["lambda2"]],
        "seed": rows["seed"].to_numpy(),
        "miou": 100.0 * rows["miou"].to_numpy(),
    })
    return points.drop_duplicates(["lambda1", "lambda2", "seed"])


def plot_lambda_study(runs: pd.DataFrame, study: dict[str, Any], paper: PaperNumbers,
                      out_png: str | os.PathLike[str], out_pdf: str | os.PathLike[str], label: str | None) -> Figure:
    """Figure 7: mIoU vs λ2 (λ1 fixed) and vs λ1 (λ2 fixed), mean ± std over seeds; the paper's optima starred.

    Our curve has its own y axis (left), scaled to our values, and the paper's optimum its own (right):
    on the embedded default our mIoU is far below the paper's, and one shared axis would flatten our curve.
    """
    points = _lambda_points(runs, study)
    figure = _figure(10.0, 4.4, label)
    panels = figure.subplots(1, 2)
    for axes, (swept, fixed) in zip(panels, (("lambda2", "lambda1"), ("lambda1", "lambda2"))):
        value = float(study[f"{fixed}_fixed"])
        chosen = points[np.isclose(points[fixed], value)]
        summary = pd.DataFrame([(x, *mean_std(group["miou"])) for x, group in chosen.groupby(swept)],
                               columns=[swept, "mean", "std", "n"])
        if len(summary):
            sns.lineplot(data=summary, x=swept, y="mean", marker="o", ax=axes, label="ours (left axis)")
            axes.errorbar(summary[swept], summary["mean"], yerr=summary["std"].fillna(0.0), fmt="none",
                          color="black", capsize=3, linewidth=1)
        theirs = axes.twinx()
        for _, optimum in paper.figure7[paper.figure7["sweep"] == swept].iterrows():
            theirs.scatter(optimum[swept], optimum["miou"], marker="*", s=260, color="gold", edgecolor="black",
                           zorder=5, label="paper's optimum (right axis)")
            theirs.annotate(f"paper: {optimum['miou']:.2f}", (optimum[swept], optimum["miou"]),
                            textcoords="offset points", xytext=(8, 6), fontsize=9)
        theirs.margins(y=0.6)
        theirs.set_ylabel("paper's mIoU (%)", color="darkgoldenrod")
        axes.margins(y=0.15)
        symbol, other = f"λ{swept[-1]}", f"λ{fixed[-1]}"
        axes.set_xticks(sorted({*map(float, study[f"{swept}_values"]), *summary[swept]}))
        axes.set_xlabel(symbol)
        axes.set_ylabel("our mIoU (%)")
        axes.set_title(f"{symbol} sweep ({other} = {value:g}), {study['model']} on {dataset_title(study['dataset'])}")
        handles = [h for a in (axes, theirs) for h in a.get_legend_handles_labels()[0]]
        labels = [t for a in (axes, theirs) for t in a.get_legend_handles_labels()[1]]
        if axes.get_legend():
            axes.get_legend().remove()
        axes.legend(handles, labels, fontsize=8, loc="lower right")
    flags = [flag for flag in consistency_flags(paper) if "figure7" in flag.tables]
    if flags:
        figure.supxlabel("\n".join(f"Paper inconsistency: {f.what};\n{f.values}." for f in flags), fontsize=7)
    _save(figure, out_png, out_pdf)
    return figure


def plot_learning_curves(runs: pd.DataFrame, models: list[str], out_png: str | os.PathLike[str],
                         out_pdf: str | os.PathLike[str], label: str | None) -> Figure:
    """Training loss against iteration, one panel per dataset, one line per model: mean over seeds, band min-max.

    The loss is each run's logged total (weighted sum of its terms, so its level differs between model
    families); what the figure answers is whether, and how fast, each model's loss falls.
    """
    main = runs[(runs["study"] == "main") & runs["model"].isin(models)]
    datasets = [d for d in DATASETS if d in set(main["dataset"])]
    if not datasets:
        raise DataError("learning curves: no main-study runs of the configured models to plot")
    figure = _figure(4.6 * len(datasets), 4.0, label)
    panels = np.atleast_1d(figure.subplots(1, len(datasets), sharey=False))
    palette = dict(zip(models, sns.color_palette("tab10", len(models))))
    for axes, dataset in zip(panels, datasets):
        for model in models:
            rows = select(main, dataset, model)
            curves = [pd.Series(r["total"], index=r["iteration"]) for r in rows["loss_curve"]]
            if not curves:
                continue
            table = pd.concat(curves, axis=1)
            axes.plot(table.index, table.mean(axis=1), color=palette[model], label=f"{model} ({len(curves)})")
            axes.fill_between(table.index, table.min(axis=1), table.max(axis=1), color=palette[model], alpha=0.2)
        axes.set_title(dataset_title(dataset))
        axes.set_xlabel("iteration")
        axes.set_ylabel("training loss (total)")
    shown = {label: handle for axes in panels for handle, label in zip(*axes.get_legend_handles_labels())}
    figure.legend(list(shown.values()), list(shown), loc="outside right upper", fontsize=7, title="model (seeds)",
                  title_fontsize=7)
    _save(figure, out_png, out_pdf)
    return figure
