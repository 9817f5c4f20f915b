"""The workflow config: validated against workflow/schemas/config.schema.yaml before any job runs.

Defaults are filled in; an unknown dataset, a lambda out of [0, 1], an unknown model name or a
missing weight file fail with one line naming the field (e.g. `config field 'comparison.models[2]':
unknown model 'bemsg'`). Model names are checked against the registry's declarations, which are
read from the model files without importing them. Values given with `--config` mean what they
would in a config file: Snakemake keeps every value nested in a `--config` entry a string
(`seeds=[0]` gives `['0']`), so they are read again as YAML where the schema does not expect a
string.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from snakemake.utils import update_config

from bemseg.config import parse_yaml, validate
from bemseg.errors import ConfigError
from bemseg.models.weights import missing_weights
from bemseg.provenance import config_hash
from bemseg.registry import model_declarations
from bemseg.workflow.plan import benchmark_seeds


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
            raise ConfigError(f"config field 'weights.{family}': {missing_weights(path)}; place it at {path} "
                              "(README, 'Real data and weights') or set it to null")


_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"),
               (dict, "object"), (type(None), "null"))


def _json_types(value: Any) -> set[str]:
    """The JSON schema types `value` satisfies (an integer is also a number)."""
    kind = next(name for cls, name in _JSON_TYPES if isinstance(value, cls))
    return {kind, "number"} if kind == "integer" else {kind}


def _typed(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> Any:
    """`value` from `--config` with its strings read as YAML wherever the schema does not expect a string."""
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    if isinstance(value, Mapping):
        properties = schema.get("properties", {})
        return {key: _typed(item, properties.get(key, {}), root) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item, schema.get("items", {}), root) for item in value]
    if not isinstance(value, str):
        return value
    allowed = schema.get("type", [])
    allowed = {allowed} if isinstance(allowed, str) else set(allowed)
    try:
        parsed = parse_yaml(value)
    except yaml.YAMLError:
        return value
    keep = ("string" in allowed and parsed is not None) or (allowed and not _json_types(parsed) & allowed)
    return value if keep else parsed


def resolve_workflow_config(config: Mapping[str, Any], schema: Mapping[str, Any],
                            overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A validated copy of the workflow config with every default filled in.

    `overrides` are the values given with `--config` (already merged into `config` by Snakemake);
    they are merged again with the types a config file would give them.
    """
    resolved = copy.deepcopy(dict(config))
    if overrides:
        update_config(resolved, _typed(overrides, schema, schema))
    resolved = validate(resolved, schema)
    _check_models(resolved)
    _check_paths(resolved)
    return resolved


def protocol(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings two runs must share for their results to be compared, and their hash.

    Everything but the choice of models: data (archives or synthetic settings), preparation, run
    settings, the benchmark's seeds and weight files. compare_variants refuses a frozen benchmark made otherwise.
    """
    settings = {
        "datasets": {name: {"archives": Path(spec["archives"]).name if spec["archives"] else None,
                            "only": spec["only"], "run": spec["run"]}
                     for name, spec in sorted(config["datasets"].items())},
        "synthetic": config["synthetic"],
        "prepare": config["prepare"],
        "run": config["run"],
        "seeds": benchmark_seeds(config),
        "weights": {k: Path(v).name if v else None for k, v in config["weights"].items()},
    }
    return {"settings": settings, "hash": config_hash(settings)}


def config_label(config: Mapping[str, Any]) -> str | None:
    """The reports' label for a config: synthetic data and/or random encoders make results not comparable."""
    from bemseg.reports.label import label_for

    synthetic = any(spec["archives"] is None for spec in config["datasets"].values())
    random_encoders = any(path is None for path in config["weights"].values())
    return label_for(synthetic=synthetic, random_encoders=random_encoders)
