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


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its name, builder, the file that defines it and its tags."""

    name: str
    builder: Builder
    source: str
    tags: tuple[str, ...]

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


def register_model(fn: Builder | None = None, *, name: str | None = None, tags: tuple[str, ...] = ()):
    """Decorator registering a model builder under `name` (default: the function's name).

    The builder is called as `builder(num_classes=..., class_names=..., pretrained=..., **overrides)`
    and returns a `bemseg.models.base.SegmentationModel`.
    """

    def decorate(builder: Builder) -> Builder:
        key = name or builder.__name__
        entry = ModelEntry(key, builder, _source_of(builder), tuple(tags))
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


def list_models(pattern: str = "*", tag: str | None = None) -> list[str]:
    """Sorted names of registered models matching a glob `pattern` and, if given, a `tag`."""
    discover()
    return sorted(n for n, e in _REGISTRY.items()
                  if fnmatch.fnmatch(n, pattern) and (tag is None or tag in e.tags))


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
                 pretrained: str | Path | None = None, **overrides: Any) -> SegmentationModel:
    """Build the registered model `name` for `num_classes` classes.

    `class_names` feed the text prompts of the multimodal models (default: generic names);
    `pretrained` is a local weight file (None: random initialisation, stated in the model's
    `weights` attribute); `overrides` set fields of the model's config (unknown fields are errors).
    """
    from bemseg.models.base import SegmentationModel

    entry = model_entry(name)
    if num_classes < 1:
        raise ModelError(f"num_classes must be a positive integer, got {num_classes}")
    names = list(class_names) if class_names is not None else [f"class {i}" for i in range(num_classes)]
    if len(names) != num_classes:
        raise ModelError(f"class_names has {len(names)} entries but num_classes is {num_classes}")
    model = entry.builder(num_classes=num_classes, class_names=names, pretrained=pretrained, **overrides)
    if not isinstance(model, SegmentationModel):
        raise ModelError(f"{entry.source}: builder '{name}' returned {type(model).__name__}, "
                         "expected a bemseg.models.base.SegmentationModel")
    model.model_name = name
    model.source = entry.source
    return model


def _decorator_name(node: ast.expr) -> tuple[str | None, str | None]:
    """(callee, explicit name) for `@register_model`, `@register_model(name=...)`, `@x.register_model`."""
    target = node.func if isinstance(node, ast.Call) else node
    callee = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
    explicit = None
    if isinstance(node, ast.Call):
        for kw in node.keywords:
            if kw.arg == "name" and isinstance(kw.value, ast.Constant):
                explicit = kw.value.value
    return callee, explicit


def declared_models() -> dict[str, str]:
    """Model names declared by `@register_model` in the model files, read without importing them.

    Maps each name to the file that declares it. Agrees with `list_models()` (a test checks it).
    """
    names: dict[str, str] = {}
    for package in MODEL_PACKAGES:
        for _, path in _package_modules(package):
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            except (OSError, SyntaxError) as exc:
                raise ModelError(f"{_display(path)}: cannot read model file ({exc})") from exc
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef):
                    for deco in node.decorator_list:
                        callee, explicit = _decorator_name(deco)
                        if callee == "register_model":
                            names[explicit or node.name] = _display(path)
    return names
