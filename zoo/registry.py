"""The backbone registry: names to specs, with provenance, duplicates and suggestions.

The registry owns validation: plugins only hand it specs through ``register``. It knows
nothing about how plugins are found; ``zoo.plugin_loader`` fills it.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass, replace

from zoo.errors import DuplicateBackboneError, SpecError, UnknownBackboneError
from zoo.spec import BackboneSpec


@dataclass(frozen=True)
class PluginInfo:
    """What the loader found of one plugin, for ``zoo plugins``."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    builtin: bool
    backbones: tuple[str, ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "backbones": list(self.backbones),
            "error": self.error,
        }


class Registry:
    """Registered backbones by name, in registration order."""

    def __init__(self) -> None:
        self._specs: dict[str, BackboneSpec] = {}
        self.plugins: list[PluginInfo] = []

    def register(
        self,
        spec: BackboneSpec,
        *,
        override: bool = False,
        plugin: str | None = None,
        distribution: str | None = None,
    ) -> BackboneSpec:
        """Add ``spec``, stamped with who registered it; a name clash needs ``override``."""
        if not isinstance(spec, BackboneSpec):
            raise SpecError(f"register() takes a zoo.BackboneSpec, got {type(spec).__name__}")
        if plugin is not None:
            spec = replace(spec, plugin=plugin, distribution=distribution)
        existing = self._specs.get(spec.name)
        if existing is not None and not override:
            raise DuplicateBackboneError(
                f"backbone '{spec.name}' from {spec.provider} duplicates the one from "
                f"{existing.provider}; register it with override=True "
                "(or 'override: true' in registry.yaml) to replace it"
            )
        self._specs[spec.name] = spec
        return spec

    def copy(self) -> Registry:
        """A registry with the same specs, to try registrations on without side effects."""
        twin = Registry()
        twin._specs = dict(self._specs)
        twin.plugins = list(self.plugins)
        return twin

    def get(self, name: str) -> BackboneSpec:
        """The spec registered as ``name``; unknown names get near-miss suggestions."""
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownBackboneError(self._unknown_message(name)) from None

    def specs(self, pattern: str | None = None) -> list[BackboneSpec]:
        """Registered specs sorted by name, filtered by an fnmatch pattern if given."""
        names = sorted(self._specs)
        if pattern:
            names = fnmatch.filter(names, pattern)
        return [self._specs[n] for n in names]

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[BackboneSpec]:
        return iter(self.specs())

    def __len__(self) -> int:
        return len(self._specs)

    def _unknown_message(self, name: str) -> str:
        by_lower = {n.lower(): n for n in self._specs}
        matches = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
        if matches:
            names = [f"'{by_lower[m]}'" for m in matches]
            choices = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
            return f"unknown backbone '{name}'; did you mean {choices}?"
        return f"unknown backbone '{name}'; `zoo list` shows the registered names"
