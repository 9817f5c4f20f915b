"""The frozen reference benchmark, and a user variant compared against it without rerunning the references.

`freeze_benchmark` stores the main-study runs (confusion matrices, their per-test-unit parts and
everything derived from them, with provenance), the models' cost and the protocol: the run settings
that must match for a comparison to be fair, identified by their hash. `compare_variant` refuses a
variant run under another protocol, then writes a Markdown report: the variant's scores against
every reference, each difference with its 95 % confidence interval and p-value from a test that
counts seed noise and test-set noise (bemseg/reports/significance.py), a verdict that calls a
difference real only when the interval excludes zero, per-class IoU against the best reference,
cost, and where all the numbers came from.
"""

from __future__ import annotations

import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from bemseg.atomic import json_text, write_text
from bemseg.data.catalog import DATASETS
from bemseg.errors import DataError
from bemseg.provenance import config_hash
from bemseg.reports.cells import interval_cell, number_cell, p_cell, seed_cell, signed_cell, significant_cell
from bemseg.reports.label import report_label
from bemseg.reports.render import to_markdown
from bemseg.reports.report_table import ReportTable
from bemseg.reports.runs import SCORES, field, read_json, seed_scores, seed_units, select
from bemseg.reports.significance import RESAMPLES, TEST_NAME, Difference, bootstrap_weights, compare, miou_interval
from bemseg.reports.stats import mean_std
from bemseg.reports.tables import METRIC_NAMES, dataset_title

FREEZE_COMMAND = "snakemake --cores all freeze_benchmark"
_RUN_KEYS = ("dataset", "model", "run", "seed", "class_names", "confusion_matrix", "unit_confusion_matrices", "iou",
             "miou", "mf1", "oa", "provenance")
_COST_KEYS = ("params_m", "gflops", "fps", "fps_device", "provenance")
VERDICTS = {None: "n/a (fewer than 2 shared seeds)", True: "{} than the reference", False: "no detectable difference"}


def protocol_hash(protocol: dict[str, Any]) -> str:
    """The protocol's `hash` when the workflow gives one, else the config hash of its settings."""
    return protocol.get("hash") or config_hash({k: v for k, v in protocol.items() if k != "hash"})


def freeze_benchmark(runs: pd.DataFrame, complexity: dict[str, dict[str, Any]], protocol: dict[str, Any],
                     out_path: str | os.PathLike[str], models: list[str] | None = None) -> dict[str, Any]:
    """Write the frozen reference results (JSON, atomically) from the main-study runs; return them.

    `models` keeps only these reference models (variants listed in a config are not references).
    """
    main = runs[runs["study"] == "main"]
    if models is not None:
        main = main[main["model"].isin(models)]
    main = main.sort_values(["dataset", "model", "seed"])
    frozen = {
        "protocol": {**protocol, "hash": protocol_hash(protocol)},
        "label": report_label(main),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "runs": [{key: row[key] for key in _RUN_KEYS} for row in main.to_dict("records")],
        "complexity": {model: {key: record.get(key) for key in _COST_KEYS} for model, record in complexity.items()},
    }
    write_text(out_path, _frozen_text(frozen))
    return frozen


def _frozen_text(frozen: dict[str, Any]) -> str:
    """The frozen benchmark as JSON with one run per line: small and diff-friendly despite the per-unit matrices."""
    head = [f"  {json_text(key)}: {json_text(value, indent=None)}," for key, value in frozen.items() if key != "runs"]
    runs = ",\n".join(f"    {json_text(run, indent=None)}" for run in frozen["runs"])
    return "{\n" + "\n".join(head) + '\n  "runs": [\n' + runs + "\n  ]\n}\n"


def load_frozen(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The frozen benchmark at `path`; missing or malformed -> a DataError saying how to (re)make it."""
    path = Path(path)
    frozen = read_json(path, f"make the frozen benchmark with `{FREEZE_COMMAND}`")
    for key in ("protocol", "label", "created", "runs", "complexity"):
        field(frozen, key, path)
    field(frozen["protocol"], "hash", path)
    if not isinstance(frozen["runs"], list) or not isinstance(frozen["complexity"], dict):
        raise DataError(f"{path}: malformed frozen benchmark ('runs' must be a list, 'complexity' a mapping); "
                        f"rerun `{FREEZE_COMMAND}`")
    for index, run in enumerate(frozen["runs"]):
        for key in _RUN_KEYS:
            field(run, key, path.with_name(f"{path.name} runs[{index}]"))
    return frozen


def _reference_runs(frozen: dict[str, Any]) -> pd.DataFrame:
    """The frozen runs in the shape of `load_runs`' rows (NaN for null IoU), so the same helpers read both."""
    rows = [{**run, "study": "main", "iou": [math.nan if v is None else v for v in run["iou"]],
             **{key: math.nan if run[key] is None else run[key] for key in SCORES}}
            for run in frozen["runs"]]
    return pd.DataFrame(rows, columns=[*_RUN_KEYS, "study"])


def _interval(units: dict[int, Any], weights: Any) -> str:
    """The seed-mean mIoU's 95% interval over bootstrap replicates of the test units, `[low, high]`."""
    if not units or weights is None or next(iter(units.values())).shape[0] != weights.shape[1]:
        return ""
    _, low, high = miou_interval(list(units.values()), weights)
    return f"[{low:.2f}, {high:.2f}]"


def verdict(difference: Difference) -> str:
    """'better/worse than the reference', 'no detectable difference', or why no verdict can be given."""
    significant = difference.significant
    text = VERDICTS[significant]
    return text.format("better" if difference.delta > 0 else "worse") if significant else text


def _scores_table(variant: str, dataset: str, ours: pd.DataFrame, references: pd.DataFrame,
                  models: list[str]) -> tuple[ReportTable, dict[str, Any]]:
    mine = {metric: seed_scores(ours, metric) for metric in SCORES}
    own_units = seed_units(ours)
    weights = bootstrap_weights(next(iter(own_units.values())).shape[0]) if own_units else None
    rows = [[variant, "variant", *(seed_cell(mine[m].values()) for m in SCORES), _interval(own_units, weights),
             "", "", ""]]
    summary: dict[str, Any] = {"variant": {m: list(mean_std(mine[m].values())) for m in SCORES}, "references": {}}
    for model in models:
        theirs_rows = select(references, dataset, model)
        theirs = {metric: seed_scores(theirs_rows, metric) for metric in SCORES}
        difference = compare(seed_units(theirs_rows), own_units, weights)
        rows.append([model, "reference", *(seed_cell(theirs[m].values()) for m in SCORES),
                     _interval(seed_units(theirs_rows), weights), interval_cell(difference.delta, difference.low, difference.high), p_cell(difference.p),
                     verdict(difference)])
        summary["references"][model] = {"miou": list(mean_std(theirs["miou"].values())),
                                        "delta_miou": difference.delta, "ci": [difference.low, difference.high],
                                        "p": difference.p, "significant": difference.significant,
                                        "verdict": verdict(difference), "seeds": difference.n_seeds,
                                        "units": difference.n_units}
    scored = [m for m in models if not math.isnan(summary["references"][m]["miou"][0])]
    summary["best_reference"] = max(scored, key=lambda m: summary["references"][m]["miou"][0], default=None)
    columns = ["model", "role", *(f"{METRIC_NAMES[m]} (%)" for m in SCORES), "mIoU test-set 95% CI",
               "Δ mIoU (variant − reference) [95% CI]", "p", "verdict"]
    table = ReportTable(f"compare_{dataset}", f"{dataset_title(dataset)}: {variant} against the frozen references",
                        columns, rows)
    return table, summary


def _class_table(variant: str, dataset: str, ours: pd.DataFrame, references: pd.DataFrame,
                 best: str) -> ReportTable:
    best_rows = select(references, dataset, best)
    rows = []
    for name in DATASETS[dataset].class_names:
        mine, theirs = seed_scores(ours, name).values(), seed_scores(best_rows, name).values()
        rows.append([name, seed_cell(mine), seed_cell(theirs), signed_cell(mean_std(mine)[0] - mean_std(theirs)[0])])
    return ReportTable(f"compare_{dataset}_classes", f"{dataset_title(dataset)}: IoU (%) per class, {variant} "
                       f"against the best reference ({best})", ["class", variant, best, "Δ"], rows)


def _cost_table(variant: str, frozen: dict[str, Any], complexity: dict[str, dict[str, Any]] | None) -> ReportTable:
    records = {**({variant: complexity[variant]} if complexity and variant in complexity else {}),
               **{m: r for m, r in frozen["complexity"].items() if m != variant}}
    rows = [[model, "variant" if model == variant else "reference", number_cell(r.get("params_m")),
             number_cell(r.get("gflops")), significant_cell(r.get("fps")), str(r.get("fps_device") or "")]
            for model, r in records.items()]
    notes = [] if variant in records else [f"no complexity record for {variant}; run `bemseg complexity` on it."]
    return ReportTable("compare_cost", "Cost (GFLOPs: fvcore, one multiply-add = one flop; Params/M trainable)",
                       ["model", "role", "Params/M", "GFLOPs", "FPS", "FPS device"], rows,
                       [*notes, "FPS from different devices are not comparable; on a CPU only ratios are."])


def _provenance_lines(ours: pd.DataFrame, frozen: dict[str, Any]) -> list[str]:
    def describe(provenances: list[dict[str, Any]]) -> str:
        commits = sorted({str(p.get("git_commit")) for p in provenances})
        torch = sorted({str((p.get("versions") or {}).get("torch")) for p in provenances})
        devices = sorted({str(p.get("device")) for p in provenances})
        return f"git commit {', '.join(commits)}; torch {', '.join(torch)}; device {', '.join(devices)}"

    return [f"- variant runs ({len(ours)}): {describe(list(ours['provenance']))}",
            f"- frozen benchmark (created {frozen['created']}, protocol {frozen['protocol']['hash']}): "
            f"{describe([run['provenance'] for run in frozen['runs']])}"]


def compare_variant(variant: str, variant_runs: pd.DataFrame, frozen: dict[str, Any], protocol: dict[str, Any],
                    out_md: str | os.PathLike[str],
                    complexity: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Compare a variant's runs with the frozen references under the same protocol; write `out_md`, return a summary.

    A protocol whose hash differs from the frozen one is refused (DataError): the numbers would not be comparable.
    """
    given, expected = protocol_hash(protocol), frozen["protocol"]["hash"]
    if given != expected:
        raise DataError(f"variant '{variant}' was run under protocol {given}, the frozen benchmark under {expected}: "
                        f"rerun the variant with the frozen protocol's settings, or refreeze with `{FREEZE_COMMAND}`")
    ours = variant_runs[(variant_runs["model"] == variant) & (variant_runs["study"] == "main")]
    if ours.empty:
        raise DataError(f"no main-study runs of variant '{variant}' to compare")
    references = _reference_runs(frozen)
    label = report_label(ours)
    lines = [f"# {variant} against the frozen benchmark", ""]
    lines += [f"**{label}**", ""] if label else []
    if frozen["label"]:
        lines += [f"**frozen references: {frozen['label']}**", ""]
    lines += [f"Protocol {expected} (same for the variant and the references). Scores in percent, mean ± sample "
              "std over seeds (n). Δ = variant − reference in mIoU points, averaged over the seeds both have, with "
              f"its 95% confidence interval and two-sided p from a {TEST_NAME}: the seed part of the noise is the "
              "spread of the per-seed differences, the test-set part comes from resampling the test units (images, "
              f"tiles or blocks) {RESAMPLES} times with replacement. A difference is called real only when its "
              "interval excludes 0; 'no detectable difference' means the data cannot tell the two apart, not that "
              "they are equal.", ""]
    summary: dict[str, Any] = {"variant": variant, "protocol_hash": expected, "label": label,
                               "frozen_label": frozen["label"], "report": os.fspath(out_md), "datasets": {}}
    for dataset in (d for d in DATASETS if d in set(ours["dataset"])):
        models = sorted(m for m in set(references.loc[references["dataset"] == dataset, "model"]) if m != variant)
        mine = select(ours, dataset, variant)
        scores, found = _scores_table(variant, dataset, mine, references, models)
        lines += [f"## {dataset_title(dataset)}", "", to_markdown(scores)]
        if found["best_reference"]:
            lines += [to_markdown(_class_table(variant, dataset, mine, references, found["best_reference"]))]
        else:
            lines += [f"No frozen reference runs on {dataset_title(dataset)}.", ""]
        summary["datasets"][dataset] = found
    lines += ["## Cost", "", to_markdown(_cost_table(variant, frozen, complexity)), "## Provenance", "",
              *_provenance_lines(ours, frozen)]
    write_text(out_md, "\n".join(lines) + "\n")
    return summary
