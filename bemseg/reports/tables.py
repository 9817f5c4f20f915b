"""The paper's Tables 3-7 rebuilt from our runs, with the paper's numbers and the difference beside them.

Every builder has the signature `build_tableN(runs, complexity, paper, label) -> ReportTable` and is
listed in `TABLES`, so the workflow renders any of them with `write_table(TABLES[name](...), prefix)`.
A metric is shown as three cells: ours (mean ± sample std (n seeds), percent), the paper's value,
and Δ = ours − paper in percentage points. Tables hold only the models and datasets present in
`runs` (study "main"); a model the paper does not report has empty paper cells. The notes say how
every number was obtained, which classes were absent from which runs, and which of the paper's
own inconsistencies concern the table.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

import pandas as pd

from bemseg.data.catalog import DATASETS
from bemseg.models.recipe import Recipe
from bemseg.reports.cells import (
    number_cell,
    interval_cell,
    p_cell,
    ratio_cell,
    seed_cell,
    signed_cell,
    significant_cell,
)
from bemseg.reports.paper import PaperNumbers, consistency_flags
from bemseg.reports.report_table import ReportTable
from bemseg.reports.runs import seed_scores, seed_units, select
from bemseg.reports.significance import TEST_NAME, compare
from bemseg.reports.stats import mean_std

BASELINE = "clip_fpn"
#: Where training time is measured, as in the paper (Tables 3 and 6 report Potsdam).
COST_DATASET = "potsdam"
#: The paper's schedule, at which our measured seconds per iteration are projected to hours.
PAPER_ITERATIONS = 80000
COST_COLUMNS = ["Train s/iter ours", "Train ratio ours", "Train h @80k ours", "Train h paper", "Train ratio paper",
                "FPS ours", "FPS ratio ours", "FPS paper", "FPS ratio paper"]
METRIC_NAMES = {"miou": "mIoU", "mf1": "mF1", "oa": "OA"}


def dataset_title(dataset: str) -> str:
    """The dataset's name as the paper's tables print it (Potsdam, Vaihingen, LoveDA)."""
    return DATASETS[dataset].title.removeprefix("ISPRS ")


def _headers(name: str) -> list[str]:
    return [f"{name} ours", f"{name} paper", f"{name} Δ"]


def _ours_paper_delta(scores: dict[int, float], paper_value: float) -> list[str]:
    mean = mean_std(scores.values())[0]
    return [seed_cell(scores.values()), number_cell(paper_value), signed_cell(mean - paper_value)]


def _main(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["study"] == "main"]


def _comparison_models(runs: pd.DataFrame, paper: PaperNumbers) -> list[str]:
    """Models of `runs` in Table 3's order, then models the paper lacks; ablation-only models are left out."""
    present = set(runs["model"])
    ordered = [m for m in paper.models("table3") if m in present]
    ablation_only = set(paper.models("table6")) - set(paper.models("table3"))
    return ordered + sorted(present - set(ordered) - ablation_only)


def _ablation_models(runs: pd.DataFrame, paper: PaperNumbers, table: str) -> list[str]:
    present = set(runs["model"])
    return [m for m in paper.models(table) if m in present]


def _seconds_per_iter(runs: pd.DataFrame, model: str) -> float:
    """Median over seeds of the median seconds per training iteration on Potsdam; NaN without such runs."""
    seconds = select(runs, COST_DATASET, model)["seconds_per_iter"].dropna()
    return float(statistics.median(seconds)) if len(seconds) else math.nan


def _fps(complexity: dict[str, dict[str, Any]], model: str) -> float:
    value = complexity.get(model, {}).get("fps")
    return math.nan if value is None else float(value)


def _cost_cells(model: str, runs: pd.DataFrame, complexity: dict[str, dict[str, Any]], paper: PaperNumbers,
                table: str) -> list[str]:
    """Training hours and FPS, ours and the paper's (as printed), each also as a ratio to the baseline's."""
    seconds, fps = _seconds_per_iter(runs, model), _fps(complexity, model)
    paper_hours, paper_fps = paper.value(table, model, "train_hours"), paper.value(table, model, "fps")
    return [significant_cell(seconds), ratio_cell(seconds, _seconds_per_iter(runs, BASELINE)),
            significant_cell(seconds * PAPER_ITERATIONS / 3600), number_cell(paper_hours, 1), ratio_cell(paper_hours, paper.value(table, BASELINE, "train_hours")),
            significant_cell(fps), ratio_cell(fps, _fps(complexity, BASELINE)),
            number_cell(paper_fps, 1), ratio_cell(paper_fps, paper.value(table, BASELINE, "fps"))]


def _seed_note(table: str) -> str:
    return (f"ours: mean ± sample std over seeds (number of seeds in brackets), percent; paper: the paper's "
            f"Table {table[5:]} as printed; Δ = ours − paper, in percentage points.")


def _absent_notes(runs: pd.DataFrame, datasets: list[str], models: list[str]) -> list[str]:
    """One note per model, dataset and class whose IoU is NaN (class absent from label and prediction) in some runs."""
    notes = []
    for dataset in datasets:
        for model in models:
            rows = select(runs, dataset, model)
            for name in DATASETS[dataset].class_names:
                absent = sum(math.isnan(v) for v in seed_scores(rows, name).values())
                if absent:
                    notes.append(f"{dataset_title(dataset)}, {model}: class '{name}' absent (no label or predicted "
                                 f"pixel) in {absent} of {len(rows)} runs; left out of those runs' mIoU/mF1 and of "
                                 "the class's mean.")
    return notes


def _evaluation_notes(runs: pd.DataFrame) -> list[str]:
    modes = sorted({"multi-scale + flip" if ms else "single-scale sliding window" for ms in runs["ms"]})
    return [f"our test: {' and '.join(modes)} (the paper tests multi-scale, section 4.1.3)."] if modes else []


def _recipe_notes(runs: pd.DataFrame, models: list[str]) -> list[str]:
    """Which training recipe (docs/RECIPE.md) and precision each model's runs used."""
    used: dict[str, list[str]] = {}
    for model in models:
        rows = runs[runs["model"] == model]
        for recipe, precision in zip(rows["recipe"], rows["precision"]):
            text = f"`{recipe['name']}` ({Recipe.from_dict(recipe).describe()}; precision {precision})"
            if model not in used.setdefault(text, []):
                used[text].append(model)
    return [f"training recipe {text}: {', '.join(names)}." for text, names in used.items()]


def _training_note(runs: pd.DataFrame) -> str:
    rows = runs[runs["dataset"] == COST_DATASET]
    iterations = ", ".join(str(i) for i in sorted(set(rows["iterations"])))
    devices = ", ".join(sorted({str(p.get("device")) for p in rows["provenance"]}))
    return (f"Train s/iter: median over seeds of each run's median seconds per training iteration on Potsdam "
            f"(after the warm-up iterations; runs of {iterations or '-'} iterations on {devices or '-'}); ratio = "
            f"over {BASELINE}'s; h @80k = s/iter x 80,000 / 3600, the hours the paper's schedule would take at that "
            "speed. The paper's hours are for 80k iterations on one RTX 3090 (section 4.1.3); only the ratios "
            "compare across devices.")


def _fps_note(complexity: dict[str, dict[str, Any]], models: list[str]) -> str:
    measured = [complexity[m] for m in models if m in complexity and complexity[m].get("fps") is not None]
    if not measured:
        return "FPS: not measured (no complexity record with FPS)."
    devices = ", ".join(sorted({str(r.get("fps_device")) for r in measured}))
    sizes = ", ".join(sorted({f"{r['size']}×{r['size']}" for r in measured if "size" in r}))
    return (f"FPS: batch 1, {sizes or 'model input'}, 1 / median of timed forwards on {devices}; ratio = over "
            f"{BASELINE}'s in the same measurement. FPS measured on a CPU are only meaningful as ratios.")


def _flops_notes(complexity: dict[str, dict[str, Any]], models: list[str]) -> list[str]:
    notes = ["GFLOPs: fvcore, one multiply-add = one flop (the paper's convention, after DenseCLIP), one eval "
             "forward at batch 1; Params/M: trainable parameters, the frozen text encoder excluded."]
    skipped = [f"{m}: " + ", ".join(f"{op} ×{count}" for op, count in complexity[m]["unsupported_ops"].items())
               for m in models if complexity.get(m, {}).get("unsupported_ops")]
    if skipped:
        notes.append("operators fvcore did not count: " + "; ".join(skipped) + ".")
    text_free = complexity.get("clip_rn50_fpn")
    if text_free and "clip_fpn" in models:
        notes.append("the paper's CLIP-FPN cost (62.60 GFLOPs, 31.00 M) equals DenseCLIP's text-free RN50-CLIP + FPN, "
                     f"which we measure as clip_rn50_fpn: {text_free['gflops']:.2f} GFLOPs, "
                     f"{text_free['params_m']:.2f} M; our clip_fpn row adds the dense attention pool, the prompts "
                     "and the score map the ablation baseline needs.")
    return notes


def _flag_notes(paper: PaperNumbers, table: str) -> list[str]:
    return [flag.note() for flag in consistency_flags(paper) if table in flag.tables]


def build_table3(runs: pd.DataFrame, complexity: dict[str, dict[str, Any]], paper: PaperNumbers,
                 label: str | None) -> ReportTable:
    """Table 3: mIoU and OA per dataset for the comparison models, then GFLOPs, params, training hours, FPS."""
    main = _main(runs)
    datasets = [d for d in DATASETS if d in set(main["dataset"])]
    models = _comparison_models(main, paper)
    columns = ["Method", "model"]
    for dataset in datasets:
        for metric in ("miou", "oa"):
            columns += _headers(f"{dataset_title(dataset)} {METRIC_NAMES[metric]}")
    columns += ["GFLOPs ours", "GFLOPs paper", "Params/M ours", "Params/M paper", *COST_COLUMNS]
    rows = []
    for model in models:
        row = [paper.method(model), model]
        for dataset in datasets:
            for metric in ("miou", "oa"):
                row += _ours_paper_delta(seed_scores(select(main, dataset, model), metric),
                                         paper.value("table3", model, f"{dataset}_{metric}"))
        cost = complexity.get(model, {})
        row += [number_cell(cost.get("gflops")), number_cell(paper.value("table3", model, "gflops")),
                number_cell(cost.get("params_m")), number_cell(paper.value("table3", model, "params_m"))]
        rows.append(row + _cost_cells(model, main, complexity, paper, "table3"))
    notes = [_seed_note("table3"), *_flops_notes(complexity, models), _training_note(main),
             _fps_note(complexity, models), *_recipe_notes(main, models), *_evaluation_notes(main), *_absent_notes(main, datasets, models),
             *_flag_notes(paper, "table3")]
    return ReportTable("table3", "Table 3. mIoU and OA (%) per dataset and model cost: ours against the paper",
                       columns, rows, notes, label)


def _class_table(table: str, dataset: str, title: str, runs: pd.DataFrame, paper: PaperNumbers,
                 label: str | None) -> ReportTable:
    """Tables 4 and 5: IoU per class and mIoU of the comparison models on one dataset."""
    main = _main(runs)
    on_dataset = main[main["dataset"] == dataset]
    models = _comparison_models(on_dataset, paper)
    metrics = [*DATASETS[dataset].class_names, "miou"]
    columns = ["Method", "model"] + [h for m in metrics for h in _headers(METRIC_NAMES.get(m, m))]
    rows = [[paper.method(model), model] + [cell for metric in metrics for cell in _ours_paper_delta(
        seed_scores(select(main, dataset, model), metric), paper.value(table, model, metric))] for model in models]
    notes = [_seed_note(table), *_recipe_notes(on_dataset, models), *_evaluation_notes(on_dataset),
             *_absent_notes(main, [dataset], models), *_flag_notes(paper, table)]
    if not models:
        notes.insert(0, f"no runs on {dataset_title(dataset)} in these results.")
    return ReportTable(table, title, columns, rows, notes, label)


def _ablation_table(table: str, dataset: str, title: str, runs: pd.DataFrame, complexity: dict[str, dict[str, Any]],
                    paper: PaperNumbers, label: str | None, with_cost: bool) -> ReportTable:
    """Tables 6 and 7: the ablation models on one dataset, and each variant's paired mIoU gain over the baseline."""
    main = _main(runs)
    on_dataset = main[main["dataset"] == dataset]
    models = _ablation_models(on_dataset, paper, table)
    metrics = [*DATASETS[dataset].class_names, "miou", "mf1", "oa"]
    columns = ["Method", "model"] + [h for m in metrics for h in _headers(METRIC_NAMES.get(m, m))]
    columns += (COST_COLUMNS if with_cost else []) + ["Δ mIoU vs baseline ours [95% CI]", "p",
                                                      "Δ mIoU vs baseline paper"]
    base = seed_units(select(main, dataset, BASELINE))
    rows = []
    for model in models:
        scores = {metric: seed_scores(select(main, dataset, model), metric) for metric in metrics}
        row = [paper.method(model), model]
        row += [cell for metric in metrics for cell in _ours_paper_delta(scores[metric],
                                                                          paper.value(table, model, metric))]
        row += _cost_cells(model, main, complexity, paper, table) if with_cost else []
        if model == BASELINE:
            row += ["", "", ""]
        else:
            gain = compare(base, seed_units(select(main, dataset, model)))
            row += [interval_cell(gain.delta, gain.low, gain.high), p_cell(gain.p),
                    signed_cell(paper.value(table, model, "miou") - paper.value(table, BASELINE, "miou"))]
        rows.append(row)
    notes = [_seed_note(table),
             f"Δ mIoU vs baseline: mIoU difference to {BASELINE} (the paper's Baseline, CLIP-FPN) averaged over the "
             f"seeds both have, with its 95% confidence interval and two-sided p from a {TEST_NAME} "
             "(bemseg/reports/significance.py): paired over seeds because runs with one seed share the data order "
             "and the initial weights of the parts the models share, and over the resampled test units."]
    if with_cost:
        notes += [_training_note(main), _fps_note(complexity, models)]
    notes += [*_recipe_notes(on_dataset, models), *_evaluation_notes(on_dataset),
              *_absent_notes(main, [dataset], models), *_flag_notes(paper, table)]
    if not models:
        notes.insert(0, f"no ablation runs on {dataset_title(dataset)} in these results.")
    return ReportTable(table, title, columns, rows, notes, label)


def build_table4(runs: pd.DataFrame, complexity: dict[str, dict[str, Any]], paper: PaperNumbers,
                 label: str | None) -> ReportTable:
    """Table 4: IoU per class on Potsdam."""
    return _class_table("table4", "potsdam", "Table 4. IoU (%) per class on Potsdam: ours against the paper",
                        runs, paper, label)


def build_table5(runs: pd.DataFrame, complexity: dict[str, dict[str, Any]], paper: PaperNumbers,
                 label: str | None) -> ReportTable:
    """Table 5: IoU per class on LoveDA."""
    return _class_table("table5", "loveda", "Table 5. IoU (%) per class on LoveDA: ours against the paper",
                        runs, paper, label)


def build_table6(runs: pd.DataFrame, complexity: dict[str, dict[str, Any]], paper: PaperNumbers,
                 label: str | None) -> ReportTable:
    """Table 6: the ablation on Potsdam, with training time and FPS."""
    return _ablation_table("table6", "potsdam", "Table 6. Ablation on Potsdam: IoU per class, mIoU, mF1, OA (%), "
                           "training time and FPS: ours against the paper", runs, complexity, paper, label, True)


def build_table7(runs: pd.DataFrame, complexity: dict[str, dict[str, Any]], paper: PaperNumbers,
                 label: str | None) -> ReportTable:
    """Table 7: the ablation on Vaihingen."""
    return _ablation_table("table7", "vaihingen", "Table 7. Ablation on Vaihingen: IoU per class, mIoU, mF1, OA (%): "
                           "ours against the paper", runs, complexity, paper, label, False)


TABLES: dict[str, Callable[[pd.DataFrame, dict[str, dict[str, Any]], PaperNumbers, str | None], ReportTable]] = {
    "table3": build_table3,
    "table4": build_table4,
    "table5": build_table5,
    "table6": build_table6,
    "table7": build_table7,
}
