"""The plan of the workflow: which runs exist, where their files go, and each run's engine config.

A run is (dataset, run id, seed). The run id is a model name, or for the lambda study
`MODEL/l1_<lambda1>_l2_<lambda2>`; the study's point (lambda1_fixed, lambda2_fixed) is the model's
main run, not trained twice. Every path the rules use comes from here, so the Snakefile and the
tests agree on the layout:

    results/raw/DATASET/                       synthetic archives (when no archives are configured)
    results/prepared/DATASET/                  `bemseg prepare` output
    results/runs/DATASET/RUN/seedS/            train_summary.json, model.pt, eval/metrics.json
    results/complexity/MODEL.json              GFLOPs, params, FPS
    results/summary/runs.{json,csv}            every run's metrics and provenance, one record each
    reports/tables/, reports/figures/, reports/compare/
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from bemseg.registry import model_declarations

RUN_ID_PATTERN = r"[A-Za-z0-9_]+(/l1_[0-9.]+_l2_[0-9.]+)?"
TABLES = ("table3", "table4", "table5", "table6", "table7")


@dataclass(frozen=True)
class RunSpec:
    """One training run of the plan."""

    dataset: str
    run: str
    seed: int
    study: str  # "main" or "lambda"

    @property
    def folder(self) -> str:
        return run_folder(self.dataset, self.run, self.seed)


def run_folder(dataset: str, run: str, seed: int | str) -> str:
    return f"results/runs/{dataset}/{run}/seed{seed}"


def lambda_run_id(model: str, lambda1: float, lambda2: float) -> str:
    return f"{model}/l1_{lambda1:g}_l2_{lambda2:g}"


def parse_run_id(run: str) -> tuple[str, dict[str, float]]:
    """(model, model options) of a run id."""
    model, _, rest = run.partition("/")
    if not rest:
        return model, {}
    _, lambda1, _, lambda2 = rest.split("_")
    return model, {"lambda1": float(lambda1), "lambda2": float(lambda2)}


def lambda_points(config: dict[str, Any]) -> list[tuple[float, float]]:
    """The study's (lambda1, lambda2) points: the lambda2 sweep, then the lambda1 sweep, without repeats."""
    study = config["lambda_study"]
    points = [(study["lambda1_fixed"], v) for v in study["lambda2_values"]]
    points += [(v, study["lambda2_fixed"]) for v in study["lambda1_values"]]
    return list(dict.fromkeys(points))


def main_models(config: dict[str, Any], dataset: str) -> list[str]:
    """Models with a main run on `dataset`: comparison (plus variants), ablation, the study's model."""
    models = []
    if dataset in config["comparison"]["datasets"]:
        models += config["comparison"]["models"] + config["variants"]
    if dataset in config["ablation"]["datasets"]:
        models += config["ablation"]["models"]
    if dataset == config["lambda_study"]["dataset"]:
        models.append(config["lambda_study"]["model"])
    return list(dict.fromkeys(models))


def reference_runs(config: dict[str, Any]) -> list[RunSpec]:
    """Every run `reproduce_tables` needs (variants listed in the config included)."""
    specs = []
    datasets = dict.fromkeys(config["comparison"]["datasets"] + config["ablation"]["datasets"]
                             + [config["lambda_study"]["dataset"]])
    for dataset in datasets:
        for model in main_models(config, dataset):
            specs += [RunSpec(dataset, model, seed, "main") for seed in config["seeds"]]
    study = config["lambda_study"]
    for lambda1, lambda2 in lambda_points(config):
        if (lambda1, lambda2) == (study["lambda1_fixed"], study["lambda2_fixed"]):
            continue
        run = lambda_run_id(study["model"], lambda1, lambda2)
        specs += [RunSpec(study["dataset"], run, seed, "lambda") for seed in config["seeds"]]
    return specs


def benchmark_seeds(config: dict[str, Any]) -> list[int]:
    """The seeds of the frozen benchmark and of every variant compared with it: `benchmark.seeds`, else `seeds`.

    A comparison needs more seeds than a table (the seed noise must be estimated, not only averaged),
    so the frozen benchmark may hold more seeds than `reproduce_tables` trains.
    """
    return sorted(config["benchmark"].get("seeds") or config["seeds"])


def variant_runs(config: dict[str, Any], variant: str) -> list[RunSpec]:
    """The runs of one variant: every comparison dataset, every benchmark seed."""
    return [RunSpec(dataset, variant, seed, "main")
            for dataset in config["comparison"]["datasets"] for seed in benchmark_seeds(config)]


def benchmark_models(config: dict[str, Any]) -> list[str]:
    """The reference models the frozen benchmark holds: comparison and ablation models, not variants."""
    return list(dict.fromkeys(config["comparison"]["models"] + config["ablation"]["models"]))


def benchmark_runs(config: dict[str, Any]) -> list[RunSpec]:
    """The runs `freeze_benchmark` stores: the main runs of the benchmark's models, at the benchmark's seeds."""
    models = benchmark_models(config)
    datasets = dict.fromkeys(config["comparison"]["datasets"] + config["ablation"]["datasets"])
    return [RunSpec(dataset, model, seed, "main") for dataset in datasets
            for model in main_models(config, dataset) if model in models for seed in benchmark_seeds(config)]


def complexity_models(config: dict[str, Any]) -> list[str]:
    """Models measured for Table 3."""
    models = config["comparison"]["models"] + config["ablation"]["models"] + config["complexity"]["extra_models"]
    return list(dict.fromkeys(models + config["variants"]))


def raw_folder(config: dict[str, Any], dataset: str) -> str:
    """Where `prepare` reads a dataset: the configured archives, or the synthetic stand-in."""
    return config["datasets"][dataset]["archives"] or f"results/raw/{dataset}"


def weights_for(config: dict[str, Any], model: str) -> str | None:
    """The configured weight file of the model's declared family (None: random initialisation)."""
    family = model_declarations()[model].weights
    return config["weights"].get(family) if family else None


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else copy.deepcopy(value)
    return merged


def run_config(config: dict[str, Any], dataset: str, run: str, seed: int) -> dict[str, Any]:
    """The engine config (bemseg/schemas/run.schema.json) of one run; validated by the engine."""
    model, options = parse_run_id(run)
    settings = _merge(config["run"], config["datasets"][dataset]["run"])
    return {
        "model": {"name": model, "pretrained": weights_for(config, model), "options": options},
        "data": {**settings.get("data", {}), "dataset": dataset, "root": f"results/prepared/{dataset}"},
        "train": {**settings.get("train", {}), "seed": seed, "threads": config["threads_per_job"]},
        "eval": dict(settings.get("eval", {})),
    }


def report_paths() -> dict[str, list[str]]:
    """Every file `reproduce_tables` produces, by kind."""
    tables = [f"reports/tables/{t}.{ext}" for t in TABLES for ext in ("md", "tex", "csv")]
    figures = [f"reports/figures/{name}.{ext}" for name in
               ("fig4_class_shares", "fig5_predictions", "fig6_vaihingen_iou", "fig7_lambda", "fig_learning_curves")
               for ext in ("png", "pdf")]
    return {"tables": tables, "figures": figures}
