"""astro_cnn: a small rotation-invariant CNN for galaxy cutouts (builder in the backbones issue)."""

from __future__ import annotations

from zoo import hookimpl
from zoo.catalog import builtin_specs


@hookimpl
def register_backbones(register):
    for spec in builtin_specs(__name__):
        register(spec)
