"""Shared fixtures: an isolated ZOO_HOME, real installed plugin distributions, one small
trained run and its export (shared by every module that needs a model), loopback servers.

Tests are marked by what they cost (pyproject.toml lists the markers); every test without
a cost marker is marked ``quick``, so ``pytest -m quick`` is the quick loop.
"""

from __future__ import annotations

import fcntl
import json
import os
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

#: Rough seconds a test of each cost takes here, to start the longest work first.
COSTS = {"guide": 90.0, "train": 12.0, "subprocess": 5.0, "heavy": 3.0}
#: Tests that are each a unit of work of their own under pytest-xdist.
OWN_UNITS = "tests/test_guides.py::test_the_guide_runs_as_written["


def unit_of_work(nodeid: str) -> str:
    """What runs on one worker: a module (its module and session fixtures are then built
    once), or one guide."""
    return nodeid if nodeid.startswith(OWN_UNITS) else nodeid.split("::", 1)[0]


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """One worker per core, and one more: many tests wait for processes they started
    (servers, the CLI, cluster workers), and the extra worker uses that time."""
    return (os.cpu_count() or 1) + 1


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's loadscope scheduler with units from ``unit_of_work``. (Its ``loadgroup``
    no longer groups on pytest 9.2: pytest-dev/pytest-xdist#1386.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByUnitOfWork(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of_work(nodeid)

    return ByUnitOfWork(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not any(item.get_closest_marker(cost) for cost in COSTS):
            item.add_marker(pytest.mark.quick)
    longest_first(items)


def longest_first(items: list[pytest.Item]) -> None:
    """Order the units of work by their estimated cost, longest first, so that the workers
    end together instead of one running a long guide alone at the end (xdist hands units
    out in collection order with ``--no-loadscope-reorder``)."""
    unit_cost: dict[str, float] = {}
    for item in items:
        unit = unit_of_work(item.nodeid)
        cost = sum(seconds for name, seconds in COSTS.items() if item.get_closest_marker(name))
        unit_cost[unit] = unit_cost.get(unit, 0.0) + (cost or 0.1)
    items.sort(key=lambda item: -unit_cost[unit_of_work(item.nodeid)])


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
def session_folder(tmp_path_factory, worker_id) -> Path:
    """A folder of this test session that every xdist worker sees (pytest's basetemp of
    the session, not of one worker)."""
    basetemp = tmp_path_factory.getbasetemp()
    return basetemp if worker_id == "master" else basetemp.parent


def build_once(folder: Path, build: Callable[[Path], None]) -> Path:
    """``build(folder)`` run by whichever worker comes first; the others wait for it and
    then use what it built."""
    done = folder / ".built"
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


def train_shared_run(root: Path) -> None:
    import zoo
    from zoo.data.synth import write_synthetic_dataset

    data, registry = root / "galaxies", root / "small.yaml"
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
        patch.setenv("ZOO_HOME", str(root / "home"))
        zoo.finetune(
            "astro_small", data, root / "run", strategy="full", epochs=1, image_size=(48,),
            registry_files=(str(registry),), progress=False,
        )  # fmt: skip
        # without the clean-process check, which the export tests run themselves
        zoo.export(root / "run", root / "models", "galaxies", check=False)


@pytest.fixture(scope="session")
def shared_run(session_folder) -> SharedRun:
    """A small astro_cnn (width 8) trained one epoch from scratch on 3 classes of 48 px
    galaxies, with a PNG of every mode and a JPEG among them, and exported; trained once
    for the whole suite, whichever worker needs it first."""
    import zoo

    root = build_once(session_folder / "shared-run", train_shared_run)
    run = zoo.load_run(root / "run")
    return SharedRun(root, root / "galaxies", root / "small.yaml", run, root / "home")


@pytest.fixture(scope="session")
def shared_export(shared_run) -> Any:
    """The shared run's export, ``models/galaxies/1``; a zoo.export.Export."""
    from zoo.export import Export

    version = shared_run.root / "models" / "galaxies" / "1"
    return Export(version, 1, json.loads((version / "zoo.json").read_text()), check=None)
