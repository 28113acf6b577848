"""What every engine shares: a model server process started, waited for and stopped."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

from zoo.errors import ZooError
from zoo.serve.config import ModelEntry
from zoo.serve.options import ServerOptions

BINARY = "tensorflow_model_server"


class Engine:
    """A model server process; subclasses say how to start it."""

    name = "engine"

    def __init__(
        self, options: ServerOptions, entries: Sequence[ModelEntry], *, gpu: bool = False
    ) -> None:
        self.options = options
        self.entries = list(entries)
        self.gpu = gpu
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        """The server's environment; None: this process's."""
        return None

    def start(self, log: Path | None = None) -> None:
        output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the process owns it
        self.process = subprocess.Popen(
            self.command(), stdout=output, stderr=subprocess.STDOUT, env=self.environment()
        )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Until every model has an AVAILABLE version; the server's exit or a timeout is an error.

        Asked over REST where the server has its REST port (plain HTTP and JSON, so this
        process need not import TensorFlow, whose protos the gRPC client needs), else
        over gRPC.
        """
        host = _connect_host(self.options.host)
        deadline = time.monotonic() + timeout
        with ExitStack() as stack:
            if self.options.rest_api_port:
                base = f"http://{host}:{self.options.rest_api_port}"
                available: Callable[[str], bool] = partial(_rest_available, base)
            else:
                from zoo.serve.client import ServingClient

                client = stack.enter_context(
                    ServingClient(f"{host}:{self.options.port}", timeout=5, retries=0)
                )
                available = partial(_available, client)
            while True:
                if self.process is not None and self.process.poll() is not None:
                    raise ZooError(
                        f"the {self.name} server exited with status {self.process.returncode}"
                    )
                if all(available(entry.name) for entry in self.entries):
                    return
                if time.monotonic() > deadline:
                    raise ZooError(
                        f"the {self.name} server did not make every model available in {timeout:.0f} s"
                    )
                time.sleep(0.2)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM: the server drains requests in flight, then exits; SIGKILL after ``timeout``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def running(engine: Engine, log: Path | None = None) -> Iterator[Engine]:
    """The server started and every model available; stopped on exit, on an error, on Ctrl-C
    and on SIGTERM (which Python would otherwise end the process on, leaving the server)."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        engine.start(log)
        engine.wait_ready()
        yield engine
    finally:
        engine.stop()
        if main:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _available(client: object, name: str) -> bool:
    import grpc

    try:
        return "AVAILABLE" in client.status(name).values()  # type: ignore[attr-defined]
    except grpc.RpcError:
        return False


def _rest_available(base: str, name: str) -> bool:
    """TF Serving's REST status (GET /v1/models/NAME) lists an AVAILABLE version."""
    try:
        with urllib.request.urlopen(f"{base}/v1/models/{name}", timeout=5) as response:
            states = json.load(response).get("model_version_status", [])
    except (OSError, ValueError):  # not listening yet, not found yet, or not JSON
        return False
    return any(state.get("state") == "AVAILABLE" for state in states)


def _connect_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
