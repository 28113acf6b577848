"""Shared fixtures: an isolated ZOO_HOME, real installed plugin distributions, the CLI."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

import zoo.plugin_loader
from helpers import REPO, RangeHandler, Served


@pytest.fixture(autouse=True)
def zoo_home(tmp_path, monkeypatch):
    """Each test gets its own empty ZOO_HOME and a fresh default registry."""
    home = tmp_path / "zoo_home"
    home.mkdir()
    monkeypatch.setenv("ZOO_HOME", str(home))
    monkeypatch.delenv("ZOO_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("ZOO_DEBUG", raising=False)
    monkeypatch.delenv("ZOO_WEIGHTS_MIRROR", raising=False)
    monkeypatch.delenv("ZOO_OFFLINE", raising=False)
    monkeypatch.setattr(zoo.plugin_loader, "_plugins", None)
    monkeypatch.setattr(zoo.plugin_loader, "_registry", None)
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


@pytest.fixture
def make_server(tmp_path) -> Iterator[Callable[[str], Served]]:
    """Start loopback HTTP servers, each serving its own folder under tmp_path."""
    running: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(name: str) -> Served:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
        served = Served(tmp_path / name, f"http://127.0.0.1:{httpd.server_address[1]}")
        served.root.mkdir()
        httpd.served = served  # type: ignore[attr-defined]
        thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        running.append((httpd, thread))
        return served

    yield start
    for httpd, thread in running:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def server(make_server) -> Served:
    """One loopback HTTP server serving files the test publishes."""
    return make_server("served")
