"""The models the embedded server serves: versions found, loaded, warmed, swapped, retried.

As TF Serving's manager: each model's base path is scanned (``versions.py``: the folders
and the version policy); the versions the policy wants are loaded (``loader.py``), their
warmup records run, and only then made available; versions the policy no longer wants
are unloaded once something it wants is serving. A version that fails to load is tried
again after ``retry_interval`` seconds, up to ``max_retries`` more times, as TF Serving's
--max_num_load_retries and --load_retry_interval_micros do (a version still being
written is served once it is whole); then it is reported in GetModelStatus with its
error while the others keep serving. A request holds the version it resolved, so a swap
never fails a request in flight.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from zoo.serve.config import ModelEntry
from zoo.serve.server.loader import SessionOptions, Version, load_version
from zoo.serve.server.status import ServingError, invalid
from zoo.serve.server.versions import versions_on_disk, wanted_versions

log = logging.getLogger("zoo.serve")

LOADING, AVAILABLE, UNLOADING, END = "LOADING", "AVAILABLE", "UNLOADING", "END"


@dataclass(frozen=True)
class LoadPolicy:
    """How failed loads are retried (TF Serving's defaults: 5 more tries, a minute apart)."""

    max_retries: int = 5
    retry_interval: float = 60.0


@dataclass
class VersionState:
    """What GetModelStatus reports of a version, and its load attempts so far."""

    state: str
    error: str = ""
    failures: int = 0
    retry_at: float = 0.0


@dataclass
class Model:
    entry: ModelEntry
    versions: dict[int, Version] = field(default_factory=dict)
    states: dict[int, VersionState] = field(default_factory=dict)


class ModelManager:
    """Loads and serves the versions of every configured model; thread-safe."""

    def __init__(
        self,
        entries: Sequence[ModelEntry],
        *,
        warmup: Callable[[Version], object] | None = None,
        session: SessionOptions | None = None,
        retries: LoadPolicy | None = None,
        prefer_tflite: bool = False,
    ) -> None:
        self.warmup = warmup
        self.prefer_tflite = prefer_tflite
        self.session = session or SessionOptions()
        self.retries = retries or LoadPolicy()
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
        self._poller = threading.Thread(
            target=self._poll_loop, args=(seconds,), daemon=True, name="zoo-poll"
        )
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
            for name in self.names():
                with self._lock:
                    model = self._models.get(name)
                if model is not None:
                    self._scan(model)

    def _scan(self, model: Model) -> None:
        wanted = wanted_versions(model.entry, versions_on_disk(model.entry.base_path))
        for number in sorted(wanted):
            if number not in model.versions and self._due(model.states.get(number)):
                self._load(model, number, wanted[number])
        with self._lock:
            if any(number in model.versions for number in wanted):
                for number in [n for n in model.versions if n not in wanted]:
                    self._unload(model, number)

    def _due(self, state: VersionState | None) -> bool:
        """Never tried, or failed with retries left and its interval past."""
        if state is None:
            return True
        if state.state != LOADING or not state.failures:
            return False
        return time.monotonic() >= state.retry_at

    def _load(self, model: Model, number: int, path: Path) -> None:
        entry = model.entry
        state = model.states.setdefault(number, VersionState(LOADING))
        try:
            version = load_version(
                entry.name, number, path, self.session, prefer_tflite=self.prefer_tflite
            )
            if self.warmup is not None:
                self.warmup(version)
        except Exception as exc:  # the old versions keep serving; the status says why
            message = " ".join(str(exc).split())[:1000]
            state.error = f"{type(exc).__name__}: {message}"
            state.failures += 1
            if state.failures > self.retries.max_retries:
                state.state = END
                log.error("model %s version %d failed to load: %s", entry.name, number, message)
            else:
                state.retry_at = time.monotonic() + self.retries.retry_interval
                log.warning(
                    "model %s version %d failed to load (attempt %d of %d), retrying in %gs: %s",
                    entry.name, number, state.failures, self.retries.max_retries + 1,
                    self.retries.retry_interval, message,
                )  # fmt: skip
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
                    raise invalid(f"Unrecognized servable version label: {label}")
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

    def labelled(self, name: str, label: str) -> int:
        """The version a label of ``name`` names; TF Serving's errors when there is none."""
        with self._lock:
            model = self._models.get(name)
            if model is None:
                raise ServingError(
                    grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {name}"
                )
            number = model.entry.labels.get(label)
        if number is None:
            raise invalid(f"Unrecognized servable version label: {label}")
        return number

    def status(self, name: str, version: int | None = None) -> list[tuple[int, VersionState]]:
        """(version, state) pairs of a model, or of one version; NOT_FOUND when unknown."""
        with self._lock:
            model = self._models.get(name)
            if model is None:
                raise ServingError(
                    grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {name}"
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

    def available(self, name: str) -> list[int]:
        """The versions of ``name`` that are serving now."""
        with self._lock:
            model = self._models.get(name)
            return sorted(model.versions) if model else []

    def load_errors(self, name: str) -> list[str]:
        """The errors of the versions of ``name`` whose last load attempt failed."""
        with self._lock:
            model = self._models.get(name)
            states = model.states.values() if model else ()
            return [s.error for s in states if s.error and s.state in (LOADING, END)]

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)

    def all_available(self) -> bool:
        """True when every model has at least one available version (the readiness probe)."""
        with self._lock:
            return all(model.versions for model in self._models.values())
