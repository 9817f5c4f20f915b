"""The workflow config: validated against workflow/schemas/config.schema.yaml before any job runs.

Defaults are filled in; an unknown dataset, a lambda out of [0, 1], an unknown model name or a
missing weight file fail with one line naming the field (e.g. `config field 'comparison.models[2]':
unknown model 'bemsg'`). Model names are checked against the registry's declarations, which are
read from the model files without importing them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from bemseg.config import validate
from bemseg.errors import ConfigError
from bemseg.provenance import config_hash
from bemseg.registry import model_declarations


def load_schema(path: str | Path) -> dict[str, Any]:
    """The workflow schema (YAML)."""
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def _check_models(config: Mapping[str, Any]) -> None:
    declared = model_declarations()
    fields = [(f"comparison.models[{i}]", m) for i, m in enumerate(config["comparison"]["models"])]
    fields += [(f"ablation.models[{i}]", m) for i, m in enumerate(config["ablation"]["models"])]
    fields += [(f"complexity.extra_models[{i}]", m) for i, m in enumerate(config["complexity"]["extra_models"])]
    fields += [(f"variants[{i}]", m) for i, m in enumerate(config["variants"])]
    fields.append(("lambda_study.model", config["lambda_study"]["model"]))
    for field, name in fields:
        if name not in declared:
            raise ConfigError(f"config field '{field}': unknown model '{name}'; allowed values: "
                              f"{', '.join(sorted(declared))} (or add a file under variants/)")
    if not config["ablation"]["models"]:
        raise ConfigError("config field 'ablation.models': needs at least the baseline model")


def _check_paths(config: Mapping[str, Any]) -> None:
    for name, spec in config["datasets"].items():
        if spec["archives"] is not None and not Path(spec["archives"]).is_dir():
            raise ConfigError(f"config field 'datasets.{name}.archives': folder {spec['archives']} does not exist; "
                              "put the downloaded archives there, or set it to null for the synthetic stand-in")
    for family, path in config["weights"].items():
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"config field 'weights.{family}': weight file {path} does not exist; "
                              "place it there (README, 'Real data and weights') or set it to null")


def resolve_workflow_config(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """A validated copy of the workflow config with every default filled in."""
    resolved = validate(copy.deepcopy(dict(config)), schema)
    _check_models(resolved)
    _check_paths(resolved)
    return resolved


def protocol(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings two runs must share for their results to be compared, and their hash.

    Everything but the choice of models: data (archives or synthetic settings), preparation, run
    settings, seeds and weight files. compare_variants refuses a frozen benchmark made otherwise.
    """
    settings = {
        "datasets": {name: {"archives": Path(spec["archives"]).name if spec["archives"] else None,
                            "only": spec["only"], "run": spec["run"]}
                     for name, spec in sorted(config["datasets"].items())},
        "synthetic": config["synthetic"],
        "prepare": config["prepare"],
        "run": config["run"],
        "seeds": sorted(config["seeds"]),
        "weights": {k: Path(v).name if v else None for k, v in config["weights"].items()},
    }
    return {"settings": settings, "hash": config_hash(settings)}


def config_label(config: Mapping[str, Any]) -> str | None:
    """The reports' label for a config: synthetic data and/or random encoders make results not comparable."""
    from bemseg.reports.label import label_for

    synthetic = any(spec["archives"] is None for spec in config["datasets"].values())
    random_encoders = any(path is None for path in config["weights"].values())
    return label_for(synthetic=synthetic, random_encoders=random_encoders)
