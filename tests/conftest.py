"""Shared fixtures: an isolated ZOO_HOME, real installed plugin distributions, one small
trained run and its export (shared by every module that needs a model), loopback servers.

Tests are marked by what they cost (pyproject.toml lists the markers); every test without
a cost marker is marked ``quick``, so ``pytest -m quick`` is the quick loop.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import zoo.plugin_loader
from helpers import CLASSES, MODES, REPO, SMALL_REGISTRY, RangeHandler, Served

COSTS = ("train", "subprocess", "guide", "heavy")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not any(item.get_closest_marker(cost) for cost in COSTS):
            item.add_marker(pytest.mark.quick)
        if not item.get_closest_marker("guide"):
            # Under pytest-xdist (--dist loadgroup), a module's tests stay on one worker, so
            # its module fixtures are built once; each guide is a unit of its own.
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


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


@dataclass(frozen=True)
class SharedRun:
    """The suite's one trained run: where it lives, its data and registry, the Run."""

    root: Path
    data: Path
    registry: Path
    run: Any  # zoo.Run
    home: Path


@pytest.fixture(scope="session")
def shared_run(tmp_path_factory) -> SharedRun:
    """A small astro_cnn (width 8) trained one epoch from scratch on 3 classes of 48 px
    galaxies, with a PNG of every mode and a JPEG among them; shared by the whole suite."""
    import zoo
    from zoo.data.synth import write_synthetic_dataset

    root = tmp_path_factory.mktemp("shared-run")
    data, registry, home = root / "galaxies", root / "small.yaml", root / "home"
    write_synthetic_dataset(data, CLASSES, 12, 48, 3, seed=21)
    for index, (name, mode) in enumerate(MODES.items()):
        label = CLASSES[index % len(CLASSES)]
        source = Image.open(data / label / f"{label}_00000.png")
        converted = source.convert(mode)
        if mode == "RGBA":
            converted.putalpha(Image.linear_gradient("L").resize(source.size))
        converted.save(data / label / name, quality=90)
    registry.write_text(SMALL_REGISTRY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZOO_HOME", str(home))
        run = zoo.finetune(
            "astro_small", data, root / "run", strategy="full", epochs=1, image_size=(48,),
            registry_files=(str(registry),), progress=False,
        )  # fmt: skip
    return SharedRun(root, data, registry, run, home)


@pytest.fixture(scope="session")
def shared_export(shared_run) -> Any:
    """The shared run exported as ``models/galaxies/1`` (without the clean-process check,
    which the export tests run themselves); a zoo.export.Export."""
    import zoo

    return zoo.export(shared_run.run.path, shared_run.root / "models", "galaxies", check=False)
