"""Reading registry.yaml files (catalogs of named backbones) into BackboneSpecs.

A registry file is data only. Its ``backbones`` mapping holds one entry per name, and
each entry says how the backbone is made in exactly one way:

``build: "package.module:function"``
    code that builds the network (the built-ins' entries point into ``zoo.plugins``);
``base: resnet50``
    an already registered backbone, with some fields changed (new weights, say); one
    that changes the builder's ``options`` does not inherit ``default_weights``, which
    fit the base's network;
``source: path/to/model``
    a self-describing model: a SavedModel directory, a ``.keras`` or ``.h5`` file, or a
    TF1 ``.meta`` graph with its checkpoint beside it.

Relative paths are resolved against the registry file's folder. Errors name the file,
the entry and the field.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from zoo.errors import RegistryFileError, SpecError, ZooError
from zoo.hookspecs import hookimpl
from zoo.spec import MODEL_FILE_BUILDER, MODEL_FILE_LAYER_MODULES, BackboneSpec, WeightSource

_HOW = ("build", "base", "source")
_COMMON = (
    "description",
    "input_shape",
    "preprocessing",
    "feature_dim",
    "weights",
    "default_weights",
    "blocks",
    "checkpoint_rename",
    "layer_modules",
    "options",
    "licence",
    "citation",
    "override",
)
_FIELDS = _HOW + _COMMON
_WEIGHT_FIELDS = ("url", "path", "sha256", "md5", "member", "channels", "licence", "description")


@dataclass(frozen=True)
class RegistryEntry:
    """One parsed entry: its spec, and whether it may replace an existing name."""

    spec: BackboneSpec
    override: bool


def read_registry_file(
    path: str | Path,
    lookup: Callable[[str], BackboneSpec] | None = None,
    *,
    builders: Collection[str] | None = None,
) -> Iterator[RegistryEntry]:
    """Yield the entries of the registry file at ``path`` in file order.

    ``lookup`` resolves ``base:`` names; it is called lazily, so entries may build on
    earlier entries of the same file once the caller has registered them.

    A registry file describes models; it does not run code. Unless it is trusted
    (``builders`` None: the file zoo ships), ``build:`` may name only the ``builders``
    that installed plugins registered, and ``layer_modules`` (modules to import) is not
    allowed.
    """
    path = Path(path).expanduser()
    backbones = _load_backbones(path)
    for name, fields in backbones.items():
        try:
            entry = _entry(path, str(name), fields, lookup)
            if builders is not None:
                _check_untrusted(fields, builders)
            yield entry
        except RegistryFileError:
            raise
        except ZooError as exc:
            raise RegistryFileError(
                f"{path}: entry '{name}': {_strip_owner(str(exc), name)}"
            ) from None


@functools.cache
def _builtin_entries() -> tuple[RegistryEntry, ...]:
    packaged = resources.files("zoo") / "registry.yaml"
    with resources.as_file(packaged) as path:
        return tuple(read_registry_file(path))


def builtin_specs(module: str) -> list[BackboneSpec]:
    """The packaged registry.yaml's specs whose builders live in ``module``.

    Built-in plugins register these: the code lives in the plugin, the metadata (sizes,
    weight URLs, licences, citations) in registry.yaml.
    """
    prefix = f"{module}:"
    return [e.spec for e in _builtin_entries() if e.spec.build_path.startswith(prefix)]


def builtin_hook(module: str) -> Callable[[Callable[..., None]], None]:
    """A built-in plugin's ``register_backbones``: its specs from the packaged registry.yaml.

    In the plugin module: ``register_backbones = builtin_hook(__name__)``.
    """

    @hookimpl
    def register_backbones(register: Callable[..., None]) -> None:
        for spec in builtin_specs(module):
            register(spec)

    return register_backbones


def _load_backbones(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RegistryFileError(f"registry file {path} does not exist") from None
    except OSError as exc:
        raise RegistryFileError(f"cannot read registry file {path}: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RegistryFileError(f"{path}:{where}: not valid YAML: {problem}") from None
    if document is None:
        return {}
    if not isinstance(document, dict) or set(document) - {"backbones"}:
        raise RegistryFileError(
            f"{path}: the file must hold one mapping, 'backbones:', of named entries"
        )
    backbones = document.get("backbones") or {}
    if not isinstance(backbones, dict):
        raise RegistryFileError(f"{path}: 'backbones' must map names to entries")
    return backbones


def _entry(
    path: Path, name: str, fields: Any, lookup: Callable[[str], BackboneSpec] | None
) -> RegistryEntry:
    where = f"{path}: entry '{name}'"
    fail = functools.partial(_field_error, where)

    if not isinstance(fields, dict):
        raise RegistryFileError(f"{where} must be a mapping of fields")
    for key in fields:
        if key not in _FIELDS:
            near = difflib.get_close_matches(str(key), _FIELDS, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else f" (known: {', '.join(_FIELDS)})"
            raise fail(str(key), f"is not a registry file field{hint}")
    how = [key for key in _HOW if key in fields]
    if len(how) != 1:
        raise fail("build", "or 'base' or 'source' must be given, exactly one of them")
    override = fields.get("override", False)
    if not isinstance(override, bool):
        raise fail("override", "must be true or false")
    options = fields.get("options") or {}
    if not isinstance(options, dict):
        raise fail("options", "must be a mapping of keyword arguments for the builder")
    weights = _weights(path, where, fields.get("weights"))
    given = {
        key: fields[key]
        for key in ("description", "preprocessing", "feature_dim", "licence", "citation")
        if key in fields
    }
    if "input_shape" in fields:
        given["input_shape"] = fields["input_shape"]
    for key in ("blocks", "checkpoint_rename", "layer_modules", "default_weights"):
        if key in fields:
            given[key] = fields[key]
    registry_file = str(path)

    if how == ["base"]:
        if lookup is None:
            raise fail("base", "cannot be used in this file")
        base = lookup(str(fields["base"]))
        if options and "default_weights" not in given:
            given["default_weights"] = ()  # other options may build another network
        merged = {w.name: w for w in base.weights}
        merged.update({w.name: w for w in weights})
        spec = replace(
            base,
            name=name,
            weights=tuple(merged.values()),
            build_options={**base.build_options, **options},
            plugin=None,
            distribution=None,
            registry_file=registry_file,
            **given,
        )
        return RegistryEntry(spec, override)

    if "input_shape" not in fields:
        raise fail("input_shape", "is required: [height, width, channels]")
    if how == ["source"]:
        source = fields["source"]
        if not isinstance(source, str) or not source:
            raise fail("source", "must be the path of a SavedModel, .keras, .h5 or .meta file")
        build: str = MODEL_FILE_BUILDER
        options = {"source": str(_resolve(path, source)), **options}
        given.setdefault("layer_modules", MODEL_FILE_LAYER_MODULES)
    else:
        build = fields["build"]
        if not isinstance(build, str):
            raise fail("build", "must be a 'module:function' string")
    spec = BackboneSpec(
        name=name,
        build=build,
        weights=weights,
        build_options=options,
        registry_file=registry_file,
        **given,
    )
    return RegistryEntry(spec, override)


def _weights(path: Path, where: str, value: Any) -> tuple[WeightSource, ...]:
    fail = functools.partial(_field_error, where)

    if value is None:
        return ()
    if not isinstance(value, dict):
        raise fail("weights", "must map weight names to a URL entry or a path")
    sources = []
    for weight_name, entry in value.items():
        if isinstance(entry, str):
            entry = {"path": entry}
        if not isinstance(entry, dict):
            raise fail(f"weights.{weight_name}", "must be a path or a mapping with 'url' or 'path'")
        unknown = sorted(set(entry) - set(_WEIGHT_FIELDS))
        if unknown:
            raise fail(
                f"weights.{weight_name}.{unknown[0]}",
                f"is not a weights field (known: {', '.join(_WEIGHT_FIELDS)})",
            )
        entry = dict(entry)
        if entry.get("path"):
            entry["path"] = str(_resolve(path, str(entry["path"])))
        try:
            sources.append(WeightSource(name=str(weight_name), **entry))
        except SpecError as exc:
            raise RegistryFileError(f"{where}: {exc}") from None
    return tuple(sources)


def _check_untrusted(fields: Any, builders: Collection[str]) -> None:
    """Refuse what would run code from a registry file that zoo did not ship."""
    build = fields.get("build")
    if build is not None and build not in builders:
        raise SpecError(
            f"field 'build' names {build!r}, which no installed plugin registered; a registry "
            "file may use only plugins' builders (`zoo info NAME` shows them, or use 'base:'); "
            "to run code of your own, write a plugin (docs/plugins.md)"
        )
    if "layer_modules" in fields:
        raise SpecError(
            "field 'layer_modules' imports code, which only plugins and zoo's own registry "
            "file may do; write a plugin (docs/plugins.md)"
        )


def _field_error(where: str, field: str, problem: str) -> RegistryFileError:
    return RegistryFileError(f"{where}: field '{field}' {problem}")


def _resolve(registry_path: Path, value: str) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else (registry_path.parent / candidate).resolve()


def _strip_owner(message: str, name: str) -> str:
    """Turn "backbone 'x': field ..." into "field ..." once the entry is already named."""
    return message.removeprefix(f"backbone '{name}': ")
