"""The models the embedded server serves: versions found on disk, loaded, warmed, swapped.

Like TF Serving's file-system source and manager: each model's base path is polled; the
integer versions its policy wants (latest N, all, specific) are loaded, their warmup
records run, and only then made available; versions the policy no longer wants are
unloaded after their replacement is in. A version that fails to load is reported in
GetModelStatus and the others keep serving. A request holds the version it resolved, so
a swap never fails a request in flight.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from zoo.serve.config import ModelEntry
from zoo.serve.server.status import ServingError
from zoo.serve.server.warmup import run_warmup

log = logging.getLogger("zoo.serve")

LOADING, AVAILABLE, UNLOADING, END = "LOADING", "AVAILABLE", "UNLOADING", "END"


@dataclass
class Version:
    """One loaded version of a model: its functions and the signature defs clients see."""

    name: str
    number: int
    path: Path
    loaded: Any
    signature_defs: dict[str, meta_graph_pb2.SignatureDef]

    def function(self, signature: str) -> Any:
        return self.loaded.signatures[signature]


@dataclass
class VersionState:
    """What GetModelStatus reports of a version: its state, and an error if it failed."""

    state: str
    error: str = ""


@dataclass
class Model:
    entry: ModelEntry
    versions: dict[int, Version] = field(default_factory=dict)
    states: dict[int, VersionState] = field(default_factory=dict)


class ModelManager:
    """Loads and serves the versions of every configured model; thread-safe."""

    def __init__(self, entries: Sequence[ModelEntry], *, warmup: bool = True) -> None:
        self.warmup = warmup
        self._lock = threading.RLock()
        self._models: dict[str, Model] = {}
        self._scanning = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self.configure(entries)

    # --- configuration and polling ---------------------------------------------------

    def configure(self, entries: Sequence[ModelEntry]) -> None:
        """Serve exactly ``entries``: new models load, removed ones unload, others re-scan."""
        with self._lock:
            wanted = {entry.name: entry for entry in entries}
            for name in list(self._models):
                if name not in wanted:
                    self._unload_model(name)
            for name, entry in wanted.items():
                model = self._models.setdefault(name, Model(entry))
                model.entry = entry
        self.poll()

    def start_polling(self, seconds: float) -> None:
        """Re-scan every ``seconds`` (TF Serving's --file_system_poll_wait_seconds); 0: never."""
        if seconds <= 0:
            return
        self._poller = threading.Thread(target=self._poll_loop, args=(seconds,), daemon=True)
        self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)

    def _poll_loop(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            try:
                self.poll()
            except Exception:  # a bad scan must not stop the polling
                log.exception("polling the model base paths failed")

    def poll(self) -> None:
        """Load the versions each policy wants that are not loaded; unload the others.

        One scan at a time: the poller and a config reload never load a version twice.
        """
        with self._scanning:
            self._scan()

    def _scan(self) -> None:
        for name in list(self._models):
            model = self._models.get(name)
            if model is None:
                continue
            wanted = _wanted_versions(model.entry, _versions_on_disk(model.entry.base_path))
            for number in sorted(wanted):
                if (
                    number not in model.versions
                    and model.states.get(number, VersionState("")).state != END
                ):
                    self._load(model, number)
            with self._lock:
                for number in list(model.versions):
                    if number not in wanted and _has_available(model, wanted):
                        self._unload(model, number)

    def _load(self, model: Model, number: int) -> None:
        entry = model.entry
        path = Path(entry.base_path) / str(number)
        model.states[number] = VersionState(LOADING)
        try:
            version = load_version(entry.name, number, path)
            if self.warmup:
                run_warmup(version)
        except Exception as exc:  # the old versions keep serving; the status says why
            message = " ".join(str(exc).split())[:1000]
            log.error("model %s version %d failed to load: %s", entry.name, number, message)
            model.states[number] = VersionState(END, f"{type(exc).__name__}: {message}")
            return
        with self._lock:
            model.versions[number] = version
            model.states[number] = VersionState(AVAILABLE)
        log.info("model %s version %d is available", entry.name, number)

    def _unload(self, model: Model, number: int) -> None:
        model.states[number] = VersionState(UNLOADING)
        model.versions.pop(number, None)  # requests holding it finish with it
        model.states[number] = VersionState(END)
        log.info("model %s version %d unloaded", model.entry.name, number)

    def _unload_model(self, name: str) -> None:
        model = self._models.pop(name)
        for number in list(model.versions):
            self._unload(model, number)

    # --- requests ------------------------------------------------------------------------

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> Version:
        """The version a request's model spec names; TF Serving's errors when there is none."""
        with self._lock:
            model = self._models.get(name)
            if model is None or not model.versions and not model.states:
                raise ServingError(
                    grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({name})"
                )
            if label:
                number = model.entry.labels.get(label)
                if number is None:
                    raise ServingError(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"Unrecognized servable version label: {label}",
                    )
                version = number
            if version is not None:
                found = model.versions.get(version)
                if found is None:
                    raise ServingError(
                        grpc.StatusCode.NOT_FOUND,
                        f"Servable not found for request: Specific({name}, {version})",
                    )
                return found
            if not model.versions:
                raise ServingError(
                    grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({name})"
                )
            return model.versions[max(model.versions)]

    def status(self, name: str, version: int | None = None) -> list[tuple[int, VersionState]]:
        """(version, state) pairs of a model, or of one version; NOT_FOUND when unknown."""
        with self._lock:
            model = self._models.get(name)
            if model is None:
                raise ServingError(
                    grpc.StatusCode.NOT_FOUND,
                    f"Could not find any versions of model {name}",
                )
            states = sorted(model.states.items())
            if version is not None:
                states = [(n, s) for n, s in states if n == version]
                if not states:
                    raise ServingError(
                        grpc.StatusCode.NOT_FOUND,
                        f"Could not find version {version} of model {name}",
                    )
            return states

    def status_available(self, name: str) -> list[int]:
        """The versions of ``name`` that are serving now."""
        with self._lock:
            model = self._models.get(name)
            return sorted(model.versions) if model else []

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)

    def all_available(self) -> bool:
        """True when every model has at least one available version (the readiness probe)."""
        with self._lock:
            return all(model.versions for model in self._models.values())


def load_version(name: str, number: int, path: Path) -> Version:
    """Load one SavedModel version and read its signature defs from saved_model.pb."""
    proto = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    signature_defs = dict(proto.meta_graphs[0].signature_def)
    signature_defs.pop("__saved_model_init_op", None)
    loaded = tf.saved_model.load(str(path))
    return Version(name, number, path, loaded, signature_defs)


def _versions_on_disk(base: Path) -> list[int]:
    base = Path(base)
    if not base.is_dir():
        return []
    return sorted(
        int(p.name) for p in base.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()
    )


def _wanted_versions(entry: ModelEntry, available: list[int]) -> set[int]:
    if entry.policy == "all":
        return set(available)
    if entry.policy == "specific":
        return set(entry.versions) & set(available)
    return set(available[-entry.latest :]) if available else set()


def _has_available(model: Model, wanted: set[int]) -> bool:
    """Unload an old version only once something the policy wants is serving."""
    return any(number in model.versions for number in wanted)


def wait_until(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False
