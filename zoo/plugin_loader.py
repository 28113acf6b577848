"""Finding plugins, once per process, and calling their hooks one guarded step at a time.

Built-in plugins and third-party ones (entry-point group ``zoo``) go through the same
pluggy hooks. Each plugin is imported and called in its own try: a broken plugin is a
warning that names it and the rest of zoo keeps working; ``ZOO_STRICT_PLUGINS=1`` makes
it fatal. Registry files (``$ZOO_HOME/registry.yaml``, ``--registry FILE``) are read
after the plugins, so a user's entries can build on any plugin's backbones; extra files
are layered on a copy of the process-wide registry, never by loading plugins again.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy

from zoo import hookspecs
from zoo.errors import PluginError, PluginWarning, RegistryFileWarning, ZooError, one_line
from zoo.paths import user_registry_path
from zoo.registry import PluginInfo, Registry
from zoo.registry_file import read_registry_file
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


@dataclass
class Plugins:
    """The imported plugins, registered with one pluggy manager, and what is known of each."""

    manager: pluggy.PluginManager
    infos: list[PluginInfo]
    strict: bool

    def call(self, hook: str, info: PluginInfo, **kwargs: Any) -> None:
        """Call one plugin's implementations of ``hook`` (pluggy would call every plugin's)."""
        plugin = self.manager.get_plugin(info.name)
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            if impl.plugin is plugin:
                impl.function(**kwargs)

    def working(self) -> list[PluginInfo]:
        return [info for info in self.infos if info.error is None]

    def fail(self, info: PluginInfo, exc: Exception, what: str) -> None:
        """Record that ``info``'s plugin broke: a warning, or PluginError when strict."""
        origin = f" (from {info.distribution})" if info.distribution else ""
        detail = one_line(exc)  # pluggy's messages span lines
        message = f"plugin '{info.name}'{origin} failed to load: {type(exc).__name__}: {detail}"
        if self.strict:
            raise PluginError(message + " [ZOO_STRICT_PLUGINS is set]") from exc
        warnings.warn(f"{message}; {what}", PluginWarning, stacklevel=4)
        self.infos[self.infos.index(info)] = replace(info, error=detail)


_plugins: Plugins | None = None
_registry: Registry | None = None


def strict_plugins() -> bool:
    """True when ZOO_STRICT_PLUGINS asks for broken plugins to be fatal."""
    return os.environ.get("ZOO_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes", "on"}


def get_plugins() -> Plugins:
    """The process-wide plugins, imported on first use and reused after."""
    global _plugins
    if _plugins is None:
        _plugins = load_plugins()
    return _plugins


def get_registry(registry_files: Sequence[str | Path] = ()) -> Registry:
    """The process-wide registry; ``registry_files`` are layered on a copy of it."""
    global _registry
    if _registry is None:
        _registry = registry_from(get_plugins())
    return with_registry_files(_registry, registry_files) if registry_files else _registry


def load_registry(
    registry_files: Sequence[str | Path] = (),
    *,
    strict: bool | None = None,
    builtins: Sequence[str] = BUILTIN_PLUGINS,
    entry_points: bool = True,
    user_registry: bool = True,
) -> Registry:
    """A new registry from plugins loaded anew (for tests and tools; most want get_registry).

    ``registry_files`` are extra registry files read after ``$ZOO_HOME/registry.yaml``.
    """
    plugins = load_plugins(builtins, entry_points=entry_points, strict=strict)
    return registry_from(plugins, registry_files, user_registry=user_registry)


def load_plugins(
    builtins: Sequence[str] = BUILTIN_PLUGINS,
    *,
    entry_points: bool = True,
    strict: bool | None = None,
) -> Plugins:
    """Import the built-in plugins and the installed ones, each in its own try."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    plugins = Plugins(manager, [], strict_plugins() if strict is None else strict)
    version = _version(DISTRIBUTION)
    found: list[tuple[PluginInfo, Callable[[], Any]]] = [
        (PluginInfo(m.rsplit(".", 1)[-1], m, DISTRIBUTION, version, True), _importer(m))
        for m in builtins
    ]
    if entry_points:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            name, dist_version = (dist.name, dist.version) if dist else (None, None)
            info = PluginInfo(ep.name, ep.value, name, dist_version, name == DISTRIBUTION)
            found.append((info, ep.load))
    for info, load in found:
        plugins.infos.append(info)
        try:
            manager.register(load(), name=info.name)
        except Exception as exc:  # a plugin may raise anything; it must not kill zoo
            plugins.fail(info, exc, "its backbones and commands are unavailable")
    return plugins


def registry_from(
    plugins: Plugins, registry_files: Sequence[str | Path] = (), *, user_registry: bool = True
) -> Registry:
    """A registry of every working plugin's backbones, then the registry files' entries."""
    registry = Registry()
    for info in plugins.working():
        try:
            names = _register_backbones(plugins, registry, info)
        except Exception as exc:
            plugins.fail(info, exc, "its backbones are unavailable")
            continue
        plugins.infos[plugins.infos.index(info)] = replace(info, backbones=names)
    registry.plugins = plugins.infos
    user = user_registry_path()
    if user_registry and user.is_file():
        try:
            registry = with_registry_files(registry, [user])
        except ZooError as exc:  # like a broken plugin: the rest keeps working
            warnings.warn(
                f"{exc}; the backbones of {user} are unavailable until it is fixed",
                RegistryFileWarning,
                stacklevel=3,
            )
    return with_registry_files(registry, registry_files)


def with_registry_files(registry: Registry, paths: Sequence[str | Path]) -> Registry:
    """A copy of ``registry`` with the entries of each registry file added, in order.

    The files describe models only: their ``build:`` entries may name only the builders
    of backbones that plugins registered.
    """
    layered = registry.copy()
    builders = {spec.build_path for spec in registry if spec.plugin}
    for path in paths:
        for entry in read_registry_file(Path(path), layered.get, builders=builders):
            layered.register(entry.spec, override=entry.override)
    return layered


def _register_backbones(plugins: Plugins, registry: Registry, info: PluginInfo) -> tuple[str, ...]:
    """Run one plugin's register_backbones; keep its backbones only if it succeeds."""
    pending: list[tuple[BackboneSpec, bool]] = []
    probe = registry.copy()  # checks duplicates without touching the registry yet

    def register(spec: BackboneSpec, *, override: bool = False) -> None:
        stamped = probe.register(
            spec, override=override, plugin=info.name, distribution=info.distribution
        )
        pending.append((stamped, override))

    plugins.call("register_backbones", info, register=register)
    for spec, override in pending:
        registry.register(spec, override=override)
    return tuple(spec.name for spec, _ in pending)


def _importer(module: str) -> Callable[[], Any]:
    return lambda: importlib.import_module(module)


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
