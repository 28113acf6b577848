"""Shared fixtures: an isolated ZOO_HOME, real installed plugin distributions, the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import zoo.plugin_loader
from helpers import REPO


@pytest.fixture(autouse=True)
def zoo_home(tmp_path, monkeypatch):
    """Each test gets its own empty ZOO_HOME and a fresh default registry."""
    home = tmp_path / "zoo_home"
    home.mkdir()
    monkeypatch.setenv("ZOO_HOME", str(home))
    monkeypatch.delenv("ZOO_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("ZOO_DEBUG", raising=False)
    monkeypatch.setattr(zoo.plugin_loader, "_default", None)
    return home


@pytest.fixture(scope="session")
def example_plugin_path(tmp_path_factory) -> Path:
    """examples/zoo-tinynet installed by pip into a folder of its own (a real install)."""
    target = tmp_path_factory.mktemp("site-example")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(REPO / "examples" / "zoo-tinynet"),
        ],
        check=True,
    )
    return target


@pytest.fixture(autouse=True)
def forget_modules_from_tmp(tmp_path):
    """Plugin modules a test installed under tmp_path are unloaded after it."""
    yield
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]
