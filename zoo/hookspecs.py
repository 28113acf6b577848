"""The plugin interface: the hooks a zoo plugin may implement.

A plugin is a module (or object) with functions marked ``@zoo.hookimpl``. Built-in
backbones are plugins too, loaded through exactly this interface. Third parties ship
theirs in a distribution that declares the entry-point group ``zoo``::

    [project.entry-points.zoo]
    mything = "mything_pkg"
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

PROJECT_NAME = "zoo"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_backbones(register: Callable[..., None]) -> None:
    """Register this plugin's backbones: call ``register(spec)`` once per BackboneSpec.

    Pass ``register(spec, override=True)`` to replace a backbone of the same name that
    an earlier plugin registered; without it a duplicate name is an error. Import
    TensorFlow inside the build functions, never at module level, so that listing
    backbones stays fast. Every implementation is called; results are ignored.
    """
