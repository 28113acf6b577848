"""The plugin interface: the hooks a zoo plugin may implement.

A plugin is a module (or object) with functions marked ``@zoo.hookimpl``; it implements
any of the hooks below. Built-in backbones are plugins too, loaded through exactly this
interface, and so is ``zoo.serve``, which adds the serving commands. Third parties ship
theirs in a distribution that declares the entry-point group ``zoo``::

    [project.entry-points.zoo]
    mything = "mything_pkg"
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to the ``zoo`` command line: ``cli`` is its ``click.Group``.

    Use ``@cli.command()`` or ``cli.add_command(...)``. Called once per process, the
    first time the command line looks its commands up. A name that a built-in command
    already has is refused with a warning. Import TensorFlow inside the command
    functions, never at module level, so that ``zoo --help`` stays fast.
    """
