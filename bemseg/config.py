"""Run configs: load, override, validate against a JSON schema (filling defaults), hash.

Validation happens before anything runs and fails with one line naming the field and what is
allowed, e.g. `config field 'train.iterations': -1 is less than the minimum of 1`.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from bemseg.errors import ConfigError
from bemseg.models.weights import missing_weights
from bemseg.registry import declared_models


class _Loader(yaml.SafeLoader):
    """YAML with YAML 1.2 floats: `1e-4` is a number (PyYAML's 1.1 rules would make it a string)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
               r"|[0-9][0-9_]*[eE][-+]?[0-9]+|\.(?:inf|Inf|INF)|[-+]\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """Parse YAML text with YAML 1.2 floats."""
    return yaml.load(text, Loader=_Loader)


def load_schema(name: str) -> dict[str, Any]:
    """A schema shipped in `bemseg/schemas/` (e.g. 'run')."""
    return json.loads(resources.files("bemseg.schemas").joinpath(f"{name}.schema.json").read_text())


def _with_defaults(validator_class: type) -> type:
    """A validator class that also writes each property's `default` into the instance."""
    check_properties = validator_class.VALIDATORS["properties"]

    def fill(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "default" in sub and prop not in instance:
                    instance[prop] = copy.deepcopy(sub["default"])
        yield from check_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": fill})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _field(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        path = f"{path}.{missing}" if path else missing
    if error.validator == "additionalProperties" and "'" in error.message:
        extra = error.message.split("'")[1]
        path = f"{path}.{extra}" if path else extra
    return path or "<top level>"


def _explain(error: jsonschema.ValidationError) -> str:
    if error.validator == "enum":
        allowed = ", ".join(json.dumps(v) for v in error.validator_value)
        return f"{json.dumps(error.instance)} is not allowed; allowed values: {allowed}"
    if error.validator == "additionalProperties":
        known = ", ".join(sorted(error.schema.get("properties", {})))
        return f"unknown field; known fields here: {known}"
    if error.validator == "required":
        return "is required"
    return error.message


def validate(instance: dict[str, Any], schema: Mapping[str, Any], what: str = "config") -> dict[str, Any]:
    """Fill defaults into `instance` (in place) and validate it; one-line ConfigError on the first problem."""
    errors = sorted(_Validator(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        raise ConfigError(f"{what} field '{_field(err)}': {_explain(err)}")
    return instance


def set_dotted(config: dict[str, Any], assignment: str) -> None:
    """Apply one `--set a.b.c=value` override; the value is parsed as YAML (numbers, lists, null)."""
    if "=" not in assignment:
        raise ConfigError(f"--set '{assignment}': expected key=value, e.g. train.iterations=100")
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    node = config
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set '{assignment}': '{part}' is not a section")
    node[parts[-1]] = parse_yaml(raw)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a one-line error for a missing or malformed file."""
    path = Path(path)
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping of sections (model, data, train, eval)")
    return data


def resolve_run_config(config: Mapping[str, Any], overrides: Iterable[str] = (),
                       check_paths: bool = True) -> dict[str, Any]:
    """Apply overrides, validate against the run schema with defaults, and check names and paths."""
    resolved = copy.deepcopy(dict(config))
    for assignment in overrides:
        set_dotted(resolved, assignment)
    validate(resolved, load_schema("run"))
    name = resolved["model"]["name"]
    known = declared_models()
    if name not in known:
        raise ConfigError(f"config field 'model.name': unknown model '{name}'; "
                          f"allowed values: {', '.join(sorted(known))}")
    if check_paths:
        root = Path(resolved["data"]["root"])
        if not (root / "manifest.json").is_file():
            raise ConfigError(f"config field 'data.root': {root} is not a prepared dataset (no manifest.json); "
                              f"run `bemseg prepare {resolved['data']['dataset']} RAW {root}` first")
        pretrained = resolved["model"]["pretrained"]
        if pretrained is not None and not Path(pretrained).is_file():
            raise ConfigError(f"config field 'model.pretrained': {missing_weights(pretrained)}; or set it to null "
                              "for random initialisation")
    return resolved
