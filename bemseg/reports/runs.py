"""One flat record per finished run: what every table, figure and the frozen benchmark is built from.

A run folder RUN/ holds RUN/train_summary.json (schedule, recipe, timing, memory, resolved config),
RUN/train_log.csv (the losses per logged iteration) and RUN/eval/metrics.json (the confusion matrix,
its per-unit parts, everything derived from it, provenance). `collect_runs` joins them into one
record per run; `write_runs` stores the records as JSON (everything) and as
a flat CSV for people and spreadsheets; `load_runs` reads the JSON back as a DataFrame, and
`seed_scores` pulls one number per seed out of it, in percent as the paper prints them.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bemseg.atomic import write_json, write_text
from bemseg.errors import DataError

RECORD_KEYS = ("dataset", "model", "run", "study", "seed", "lambda1", "lambda2", "class_names", "iou", "f1",
               "miou", "mf1", "oa", "absent_class_names", "confusion_matrix", "unit_confusion_matrices", "ms",
               "iterations", "batch_size", "crop_size", "recipe", "precision", "seconds_per_iter", "projected_hours",
               "peak_memory_mb", "loss_curve", "eval_fps", "synthetic", "weights", "predictions_dir", "provenance")
#: Record keys copied to the CSV as they are (lists and the confusion matrix are left out or flattened).
_CSV_KEYS = ("dataset", "model", "run", "study", "seed", "lambda1", "lambda2", "miou", "mf1", "oa", "ms",
             "iterations", "batch_size", "crop_size", "precision", "seconds_per_iter", "projected_hours",
             "peak_memory_mb", "eval_fps", "synthetic", "weights", "predictions_dir")
#: Metrics that are fractions in the records and percent in every report.
SCORES = ("miou", "mf1", "oa")
_SEED_FOLDER = re.compile(r"seed\d+")


RUN_REMEDY = "finish the run (train, then evaluate) before reporting"


def read_json(path: Path, remedy: str = RUN_REMEDY) -> Any:
    """The content of a JSON file the suite produced; missing or malformed -> one-line DataError ending in `remedy`."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: missing; {remedy}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: malformed JSON ({err}); {remedy}") from None


def field(data: Mapping[str, Any], key: str, path: Path) -> Any:
    """`data[key]`, or a DataError naming the file and the missing field."""
    if not isinstance(data, Mapping) or key not in data:
        raise DataError(f"{path}: missing field '{key}'")
    return data[key]


def _floats(values: Iterable[float | None]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


def _loss_curve(path: Path) -> dict[str, list[float]]:
    """The training log's iterations and total loss (train_log.csv, one row per logged iteration)."""
    try:
        rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
        return {"iteration": [int(row["iteration"]) for row in rows], "total": [float(row["total"]) for row in rows]}
    except FileNotFoundError:
        raise DataError(f"{path}: missing; {RUN_REMEDY}") from None
    except (KeyError, ValueError, TypeError) as err:
        raise DataError(f"{path}: malformed training log ({err}); train the run again") from None


def run_id(run_dir: Path, dataset: str) -> str:
    """The run's id: its path below the dataset's folder (results/runs/DATASET/...) without the seedN folder."""
    parts = run_dir.parts
    below = parts[len(parts) - parts[::-1].index(dataset):] if dataset in parts else (run_dir.name,)
    if len(below) > 1 and _SEED_FOLDER.fullmatch(below[-1]):
        below = below[:-1]
    return "/".join(below)


def _record(run_dir: Path, study: Mapping[str, str], run_ids: Mapping[str, str]) -> dict[str, Any]:
    summary_path, metrics_path = run_dir / "train_summary.json", run_dir / "eval" / "metrics.json"
    summary, metrics = read_json(summary_path), read_json(metrics_path)
    for key in ("model", "dataset"):
        if field(summary, key, summary_path) != field(metrics, key, metrics_path):
            raise DataError(f"{metrics_path}: {key} '{metrics[key]}' differs from '{summary[key]}' in {summary_path}")
    if os.fspath(run_dir) not in study:
        raise DataError(f"{run_dir}: no study given for this run folder (expected 'main' or 'lambda')")
    config = field(summary, "config", summary_path)
    options = field(config, "model", summary_path).get("options") or {}
    provenance = dict(field(metrics, "provenance", metrics_path))
    provenance.pop("trained_with", None)
    class_names = field(metrics, "class_names", metrics_path)
    iou = _floats(field(metrics, "iou", metrics_path))
    if len(iou) != len(class_names):
        raise DataError(f"{metrics_path}: field 'iou' has {len(iou)} values for {len(class_names)} classes")
    dataset = metrics["dataset"]
    return {
        "dataset": dataset,
        "model": metrics["model"],
        "run": run_ids.get(os.fspath(run_dir)) or run_id(run_dir, dataset),
        "study": study[os.fspath(run_dir)],
        "seed": field(metrics, "seed", metrics_path),
        "lambda1": options.get("lambda1"),
        "lambda2": options.get("lambda2"),
        "class_names": list(class_names),
        "iou": iou,
        "f1": _floats(field(metrics, "f1", metrics_path)),
        **{key: _floats([field(metrics, key, metrics_path)])[0] for key in SCORES},
        "absent_class_names": list(field(metrics, "absent_class_names", metrics_path)),
        "confusion_matrix": field(metrics, "confusion_matrix", metrics_path),
        "unit_confusion_matrices": field(metrics, "unit_confusion_matrices", metrics_path),
        "ms": field(metrics, "ms", metrics_path),
        "iterations": field(summary, "iterations", summary_path),
        "batch_size": field(summary, "batch_size", summary_path),
        "crop_size": field(summary, "crop_size", summary_path),
        "recipe": field(summary, "recipe", summary_path),
        "precision": field(summary, "precision", summary_path),
        "seconds_per_iter": field(summary, "seconds_per_iter_median", summary_path),
        "projected_hours": field(summary, "projected_hours", summary_path),
        "peak_memory_mb": field(summary, "peak_memory_mb", summary_path),
        "loss_curve": _loss_curve(run_dir / "train_log.csv"),
        "eval_fps": metrics.get("fps"),
        "synthetic": field(provenance, "synthetic", metrics_path),
        "weights": field(provenance, "weights", metrics_path),
        "predictions_dir": os.fspath(run_dir / "eval" / "predictions"),
        "provenance": provenance,
    }


def collect_runs(run_dirs: Iterable[str | os.PathLike[str]], study: Mapping[str, str],
                 run_ids: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """One flat record per run folder (keys: RECORD_KEYS).

    `study` maps each run folder (as a string) to its study ("main" or "lambda"); `run_ids`
    optionally gives a folder's run id, which is otherwise its path below results/runs/DATASET/
    without the seedN folder. A missing file or field raises a DataError naming it.
    """
    def normal(mapping: Mapping[str, str] | None) -> dict[str, str]:
        return {os.fspath(Path(key)): value for key, value in (mapping or {}).items()}

    studies, ids = normal(study), normal(run_ids)
    return [_record(Path(run_dir), studies, ids) for run_dir in run_dirs]


def _csv_row(record: Mapping[str, Any]) -> dict[str, Any]:
    provenance = record["provenance"]
    return {
        **{key: record[key] for key in _CSV_KEYS},
        "recipe": record["recipe"]["name"],
        **{f"iou_{name}": value for name, value in zip(record["class_names"], record["iou"])},
        "absent_class_names": ";".join(record["absent_class_names"]),
        "config_hash": provenance.get("config_hash"),
        "git_commit": provenance.get("git_commit"),
        "device": provenance.get("device"),
        "torch": (provenance.get("versions") or {}).get("torch"),
    }


def write_runs(records: list[dict[str, Any]], json_path: str | os.PathLike[str],
               csv_path: str | os.PathLike[str]) -> None:
    """Write the records as JSON (complete) and CSV (one line per run, `iou_<class>` columns), atomically."""
    write_json(json_path, records)
    rows = [_csv_row(record) for record in records]
    iou_columns = list(dict.fromkeys(key for row in rows for key in row if key.startswith("iou_")))
    columns = [*_CSV_KEYS, "recipe", *iou_columns, "absent_class_names", "config_hash", "git_commit", "device", "torch"]
    write_text(csv_path, pd.DataFrame(rows, columns=columns).to_csv(index=False))


def load_runs(json_path: str | os.PathLike[str]) -> pd.DataFrame:
    """The records written by `write_runs` as a DataFrame, one row per run; nulls come back as NaN."""
    path = Path(json_path)
    records = read_json(path, "collect the runs first (collect_runs, then write_runs)")
    if not isinstance(records, list):
        raise DataError(f"{path}: expected a list of run records")
    for index, record in enumerate(records):
        for key in RECORD_KEYS:
            field(record, key, path.with_name(f"{path.name}[{index}]"))
        record["iou"], record["f1"] = _floats(record["iou"]), _floats(record["f1"])
        for key in SCORES:
            record[key] = _floats([record[key]])[0]
    return pd.DataFrame(records, columns=list(RECORD_KEYS))


def load_complexity(paths: Iterable[str | os.PathLike[str]]) -> dict[str, dict[str, Any]]:
    """model -> complexity record (`bemseg.complexity.measure`'s output), one JSON file per model."""
    records: dict[str, dict[str, Any]] = {}
    sources: dict[str, Path] = {}
    for path in map(Path, paths):
        record = read_json(path, "measure the model first (`bemseg complexity --json`)")
        for key in ("model", "params_m", "gflops", "provenance"):
            field(record, key, path)
        model = record["model"]
        if model in records:
            raise DataError(f"{path}: a second complexity record for '{model}' (the first is {sources[model]})")
        records[model], sources[model] = record, path
    return records


def select(runs: pd.DataFrame, dataset: str, model: str, study: str = "main") -> pd.DataFrame:
    """The runs of one model on one dataset in one study."""
    return runs[(runs["dataset"] == dataset) & (runs["model"] == model) & (runs["study"] == study)]


def seed_scores(rows: pd.DataFrame, metric: str) -> dict[int, float]:
    """seed -> `metric` in percent: "miou", "mf1", "oa", or a class name for that class's IoU (NaN if absent).

    `rows` must hold one run per seed (one model, dataset and setting); two runs with one seed are a DataError.
    """
    scores: dict[int, float] = {}
    for _, row in rows.iterrows():
        seed = int(row["seed"])
        if seed in scores:
            raise DataError(f"runs: two runs of {row['model']} on {row['dataset']} with seed {seed} "
                            f"(run '{row['run']}' and another); give each run of a study its own seed")
        if metric in SCORES:
            value = row[metric]
        else:
            names = list(row["class_names"])
            value = row["iou"][names.index(metric)] if metric in names else math.nan
        scores[seed] = 100.0 * value
    return scores


def seed_units(rows: pd.DataFrame) -> dict[int, np.ndarray]:
    """seed -> the run's per-test-unit confusion matrices (U, C, C), for bemseg.reports.significance.compare."""
    return {int(row["seed"]): np.asarray(row["unit_confusion_matrices"], dtype=np.float64)
            for _, row in rows.iterrows()}
