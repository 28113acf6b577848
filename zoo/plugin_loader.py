"""Finding plugins and filling a Registry from them, one guarded step per plugin.

Built-in plugins and third-party ones (entry-point group ``zoo``) go through the same
pluggy hook. Each plugin is imported and called in its own try: a broken plugin is a
warning that names it and the rest of zoo keeps working; ``ZOO_STRICT_PLUGINS=1`` makes
it fatal. Registry files (``$ZOO_HOME/registry.yaml``, ``--registry FILE``) are read
last, so a user's entries can build on any plugin's backbones.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy

from zoo import hookspecs
from zoo.catalog import read_catalog
from zoo.errors import PluginError, PluginWarning, one_line
from zoo.paths import user_catalog_path
from zoo.registry import PluginInfo, Registry
from zoo.spec import BackboneSpec

ENTRY_POINT_GROUP = "zoo"
DISTRIBUTION = "zoo"
BUILTIN_PLUGINS: tuple[str, ...] = (
    "zoo.plugins.resnet",
    "zoo.plugins.inception",
    "zoo.plugins.nasnet",
    "zoo.plugins.astro",
    "zoo.plugins.keras_applications",
)

_default: Registry | None = None


def strict_plugins() -> bool:
    """True when ZOO_STRICT_PLUGINS asks for broken plugins to be fatal."""
    return os.environ.get("ZOO_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes", "on"}


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use and reused after."""
    global _default
    if _default is None:
        _default = load_registry()
    return _default


def load_registry(
    catalogs: Sequence[str | Path] = (),
    *,
    strict: bool | None = None,
    builtins: Sequence[str] = BUILTIN_PLUGINS,
    entry_points: bool = True,
    user_catalog: bool = True,
) -> Registry:
    """A new registry: built-in plugins, installed plugins, then registry files.

    ``catalogs`` are extra registry files read after ``$ZOO_HOME/registry.yaml``.
    """
    strict = strict_plugins() if strict is None else strict
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    registry = Registry()
    version = _version(DISTRIBUTION)

    found: list[tuple[PluginInfo, Callable[[], Any]]] = [
        (PluginInfo(m.rsplit(".", 1)[-1], m, DISTRIBUTION, version, True), _importer(m))
        for m in builtins
    ]
    if entry_points:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                ep.name,
                ep.value,
                dist.name if dist else None,
                dist.version if dist else None,
                False,
            )
            found.append((info, ep.load))

    for info, load in found:
        try:
            manager.register(load(), name=info.name)
            info = _call_plugin(manager, registry, info)
        except Exception as exc:  # a plugin may raise anything; it must not kill zoo
            info = _failed(info, exc, strict)
        registry.plugins.append(info)

    paths = [user_catalog_path()] if user_catalog and user_catalog_path().is_file() else []
    for path in [*paths, *map(Path, catalogs)]:
        for entry in read_catalog(path, registry.get):
            registry.register(entry.spec, override=entry.override)
    return registry


def _call_plugin(manager: pluggy.PluginManager, registry: Registry, info: PluginInfo) -> PluginInfo:
    """Run one plugin's register_backbones; keep its backbones only if it succeeds."""
    plugin = manager.get_plugin(info.name)
    impls = [i for i in manager.hook.register_backbones.get_hookimpls() if i.plugin is plugin]
    pending: list[tuple[BackboneSpec, bool]] = []
    probe = registry.copy()  # checks duplicates without touching the registry yet

    def register(spec: BackboneSpec, *, override: bool = False) -> None:
        stamped = probe.register(
            spec, override=override, plugin=info.name, distribution=info.distribution
        )
        pending.append((stamped, override))

    for impl in impls:
        impl.function(register=register)
    for spec, override in pending:
        registry.register(spec, override=override)
    names = tuple(spec.name for spec, _ in pending)
    return replace(info, backbones=names)


def _failed(info: PluginInfo, exc: Exception, strict: bool) -> PluginInfo:
    origin = f" (from {info.distribution})" if info.distribution else ""
    detail = one_line(exc)  # pluggy's messages span lines
    message = f"plugin '{info.name}'{origin} failed to load: {type(exc).__name__}: {detail}"
    if strict:
        raise PluginError(message + " [ZOO_STRICT_PLUGINS is set]") from exc
    warnings.warn(message + "; its backbones are unavailable", PluginWarning, stacklevel=3)
    return replace(info, error=detail)


def _importer(module: str) -> Callable[[], Any]:
    return lambda: importlib.import_module(module)


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
