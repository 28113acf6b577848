"""Where zoo keeps its files: one home directory, overridable with ZOO_HOME."""

from __future__ import annotations

import os
from pathlib import Path


def zoo_home() -> Path:
    """The cache and configuration root: ``$ZOO_HOME`` or ``~/.cache/zoo``."""
    configured = os.environ.get("ZOO_HOME")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "zoo"


def user_registry_path() -> Path:
    """The user's own registry file, read when it exists."""
    return zoo_home() / "registry.yaml"
