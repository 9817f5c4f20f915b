"""The one place where models are named.

Model files register a builder with `@register_model`; `create_model(name, ...)` builds one and
`list_models()` lists them, as timm does. Model files are found, not listed: every module in the
packages of `MODEL_PACKAGES` is imported on first use, so a new model or variant is one new file.

`declared_models()` answers the same question without importing anything (it reads the files'
syntax): the workflow uses it to validate a config in well under a second, before any job runs.
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
import importlib
import importlib.util
import inspect
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bemseg.errors import ModelError

if TYPE_CHECKING:
    from bemseg.models.base import SegmentationModel

#: Packages whose modules register models: the suite's own family, the baselines, user variants.
MODEL_PACKAGES: tuple[str, ...] = ("bemseg.models", "baselines", "variants")

Builder = Callable[..., "SegmentationModel"]


#: Pretrained-weight families a model can declare: which weight file of a config it takes.
WEIGHT_FAMILIES = ("clip", "imagenet")


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its name, builder, the file that defines it and its weight family."""

    name: str
    builder: Builder
    source: str
    weights: str | None

    @property
    def takes_dataset(self) -> bool:
        """Whether the builder declares a `dataset` parameter (it then receives the dataset's name)."""
        return "dataset" in inspect.signature(self.builder).parameters

    @property
    def description(self) -> str:
        """First line of the builder's docstring."""
        return (self.builder.__doc__ or "").strip().splitlines()[0] if self.builder.__doc__ else ""


_REGISTRY: dict[str, ModelEntry] = {}
_DISCOVERED = False


def _source_of(obj: Any) -> str:
    module = sys.modules.get(obj.__module__)
    path = Path(getattr(module, "__file__", "") or obj.__module__)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def register_model(fn: Builder | None = None, *, name: str | None = None, weights: str | None = None):
    """Decorator registering a model builder under `name` (default: the function's name).

    The builder is called as `builder(num_classes=..., class_names=..., pretrained=..., **overrides)`
    and returns a `bemseg.models.base.SegmentationModel`. `weights` names the pretrained-weight family
    the builder loads ("clip" or "imagenet"), so a workflow config's weight files reach the right models.
    """
    if weights is not None and weights not in WEIGHT_FAMILIES:
        raise ModelError(f"register_model: weights='{weights}' is not one of {', '.join(WEIGHT_FAMILIES)}")

    def decorate(builder: Builder) -> Builder:
        key = name or builder.__name__
        entry = ModelEntry(key, builder, _source_of(builder), weights)
        known = _REGISTRY.get(key)
        if known is not None and known.source != entry.source:
            raise ModelError(f"{entry.source}: model name '{key}' is already registered by {known.source}; "
                             "choose another name")
        _REGISTRY[key] = entry
        return builder

    return decorate(fn) if fn is not None else decorate


def _package_modules(package: str) -> list[tuple[str, Path]]:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    found = []
    for location in spec.submodule_search_locations:
        for info in pkgutil.iter_modules([location]):
            if not info.name.startswith("_"):
                found.append((f"{package}.{info.name}", Path(location) / f"{info.name}.py"))
    return sorted(found)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _import_model_module(module: str, path: Path) -> None:
    """Import one model file; any failure inside it becomes a ModelError naming the file."""
    try:
        importlib.import_module(module)
    except ModelError:
        raise
    except Exception as exc:  # any failure inside a model file is that file's fault
        raise ModelError(f"{_display(path)}: cannot import model file ({type(exc).__name__}: {exc}); "
                         "fix the file or move it out of the package") from exc


def discover() -> None:
    """Import every model module once; a module that fails to import is named in a ModelError."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    for package in MODEL_PACKAGES:
        for module, path in _package_modules(package):
            _import_model_module(module, path)
    _DISCOVERED = True


def list_models(pattern: str = "*", weights: str | None = None) -> list[str]:
    """Sorted names of registered models matching a glob `pattern` and, if given, a weight family."""
    discover()
    return sorted(n for n, e in _REGISTRY.items()
                  if fnmatch.fnmatch(n, pattern) and (weights is None or e.weights == weights))


def _import_declaring_module(name: str) -> None:
    """Import only the file that declares `name` (a job that builds one model needs no others)."""
    source = declared_models().get(name)
    if source is None:
        return
    for package in MODEL_PACKAGES:
        for module, path in _package_modules(package):
            if _display(path) == source:
                _import_model_module(module, path)
                return


def model_entry(name: str) -> ModelEntry:
    """The registry entry for `name`, or a ModelError listing close matches."""
    if name not in _REGISTRY and not _DISCOVERED:
        _import_declaring_module(name)
    if name not in _REGISTRY:
        discover()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ModelError(f"unknown model '{name}'{hint}; known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_model(name: str, num_classes: int, class_names: list[str] | None = None,
                 pretrained: str | Path | None = None, dataset: str | None = None,
                 **overrides: Any) -> SegmentationModel:
    """Build the registered model `name` for `num_classes` classes.

    `class_names` feed the text prompts of the multimodal models (default: generic names);
    `pretrained` is a local weight file (None: random initialisation, stated in the model's
    `weights` attribute); `dataset` names the dataset the model is built for, passed only to
    builders that declare a `dataset` parameter (e.g. for per-dataset class descriptions);
    `overrides` set fields of the model's config (unknown fields are errors).
    """
    from bemseg.models.base import SegmentationModel

    entry = model_entry(name)
    if num_classes < 1:
        raise ModelError(f"num_classes must be a positive integer, got {num_classes}")
    names = list(class_names) if class_names is not None else [f"class {i}" for i in range(num_classes)]
    if len(names) != num_classes:
        raise ModelError(f"class_names has {len(names)} entries but num_classes is {num_classes}")
    if entry.takes_dataset:
        overrides["dataset"] = dataset
    model = entry.builder(num_classes=num_classes, class_names=names, pretrained=pretrained, **overrides)
    if not isinstance(model, SegmentationModel):
        raise ModelError(f"{entry.source}: builder '{name}' returned {type(model).__name__}, "
                         "expected a bemseg.models.base.SegmentationModel")
    model.model_name = name
    model.source = entry.source
    return model


@dataclass(frozen=True)
class Declaration:
    """What a model file declares about one model, read from its syntax."""

    source: str
    weights: str | None


def _declaration(node: ast.expr, path: Path) -> tuple[str | None, Declaration] | None:
    """(explicit name, declaration) for `@register_model`, `@register_model(name=..., weights=...)`."""
    target = node.func if isinstance(node, ast.Call) else node
    callee = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
    if callee != "register_model":
        return None
    keywords = {kw.arg: kw.value.value for kw in getattr(node, "keywords", []) if isinstance(kw.value, ast.Constant)}
    return keywords.get("name"), Declaration(_display(path), keywords.get("weights"))


def model_declarations() -> dict[str, Declaration]:
    """Every `@register_model` in the model files, read without importing them (fast, no torch)."""
    found: dict[str, Declaration] = {}
    for package in MODEL_PACKAGES:
        for _, path in _package_modules(package):
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            except (OSError, SyntaxError) as exc:
                raise ModelError(f"{_display(path)}: cannot read model file ({exc})") from exc
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef):
                    for deco in node.decorator_list:
                        declared = _declaration(deco, path)
                        if declared is not None:
                            found[declared[0] or node.name] = declared[1]
    return found


def declared_models() -> dict[str, str]:
    """Model names declared in the model files, each mapped to its file; agrees with `list_models()`."""
    return {name: d.source for name, d in model_declarations().items()}
