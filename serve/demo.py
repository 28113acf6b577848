"""``zoo demo``: the whole path in one command, on the embedded defaults.

Synthetic galaxies, a fine-tune of astro_cnn from its shipped weights (the feature
cache on), an export for TF Serving, a server (tensorflow_model_server when installed,
else the embedded one), and the run's held-out images sent to it over gRPC one per
request. The served answers must give the run's own test metrics, image for image; the
demo fails if they do not. The server stops however the demo ends.
"""

from __future__ import annotations

import shutil
import socket
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import ConfigError, ZooError
from zoo.fs import write_json, write_text

MARKER = ".zoo-demo"
MODEL = "galaxies"
RESULT = "demo.json"

if TYPE_CHECKING:
    from zoo.serve.engines import Engine


@dataclass
class DemoResult:
    """What the demo measured, and where its files are."""

    model: str
    engine: str
    address: str
    rest_address: str | None
    version: int
    labels: list[str]
    images: int
    served_confusion: list[list[int]]
    run_confusion: list[list[int]]
    latency_ms: dict[str, float]
    paths: dict[str, str] = field(default_factory=dict)

    @property
    def agrees(self) -> bool:
        return self.served_confusion == self.run_confusion

    def accuracy(self, confusion: list[list[int]], row: int | None = None) -> float:
        rows = confusion if row is None else [confusion[row]]
        total = sum(sum(r) for r in rows)
        correct = sum(r[i if row is None else row] for i, r in enumerate(rows))
        return correct / total if total else 0.0

    def table(self) -> list[str]:
        width = max(len("class"), *(len(label) for label in self.labels))
        lines = [f"{'class':<{width}}  images  served accuracy  run's test accuracy"]
        for i, label in enumerate(self.labels):
            lines.append(
                f"{label:<{width}}  {sum(self.served_confusion[i]):>6}  "
                f"{self.accuracy(self.served_confusion, i):>15.3f}  "
                f"{self.accuracy(self.run_confusion, i):>19.3f}"
            )
        lines.append(
            f"{'all':<{width}}  {self.images:>6}  {self.accuracy(self.served_confusion):>15.3f}  "
            f"{self.accuracy(self.run_confusion):>19.3f}"
        )
        lines.append(
            f"latency per request: p50 {self.latency_ms['p50']:.1f} ms, "
            f"p99 {self.latency_ms['p99']:.1f} ms ({self.images} requests, one image each)"
        )
        return lines


def prepare_workdir(workdir: Path) -> Path:
    """The demo's folder: new, empty, or one an earlier demo made (never anything else)."""
    workdir = workdir.expanduser().resolve()
    if workdir.exists() and not workdir.is_dir():
        raise ConfigError(f"--workdir {workdir} is a file")
    if workdir.is_dir() and any(workdir.iterdir()) and not (workdir / MARKER).is_file():
        raise ConfigError(
            f"--workdir {workdir} holds files that zoo demo did not write; "
            "give a new or empty folder"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    write_text(workdir / MARKER, "made by zoo demo; it may replace what is in this folder\n")
    return workdir


def free_port(preferred: int, host: str = "127.0.0.1") -> int:
    """``preferred`` if nothing listens on it, else a port the system picks."""
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise ZooError(f"no free port on {host}")


def run_demo(
    workdir: Path,
    *,
    per_class: int = 100,
    size: int = 64,
    seed: int = 0,
    port: int = 8500,
    rest_port: int = 8501,
    on_serving: Callable[[DemoResult, Engine], None] | None = None,
    say: Callable[[str], None] = print,
) -> DemoResult:
    """Data, fine-tune, export, serve, predict; ``on_serving`` runs while the server is up."""
    import zoo
    from zoo.data.synth import write_synthetic_dataset
    from zoo.serve.config import ModelEntry, write_model_config
    from zoo.serve.engines import BINARY, choose, running
    from zoo.serve.options import ServerOptions
    from zoo.serve.server_files import write_server_files

    workdir = prepare_workdir(workdir)
    data, run_path, base = workdir / "galaxies", workdir / "run", workdir / "models"
    say(f"[1/5] rendering {per_class} synthetic galaxies per class at {size} px into {data}")
    if data.exists():
        shutil.rmtree(data)  # an earlier demo's images; rendered again, as asked now
    write_synthetic_dataset(data, per_class=per_class, size=size, seed=seed, progress=True)
    say(f"[2/5] fine-tuning astro_cnn from its shipped weights into {run_path}")
    run = zoo.finetune("astro_cnn", data, run_path, seed=seed, force=run_path.exists())
    say(f"[3/5] exporting for TF Serving into {base / MODEL}")
    exported = zoo.export(run.path, base, MODEL, version=1, force=True, progress=True)
    serve_dir = workdir / "serve"
    serve_dir.mkdir(exist_ok=True)
    entry = ModelEntry(MODEL, exported.path.parent)
    options = ServerOptions(
        port=free_port(port),
        rest_api_port=free_port(rest_port),
        enable_grpc_healthcheck_service=True,
        model_config_file=str(write_model_config(serve_dir / "models.config", [entry])),
    )
    write_server_files(options, serve_dir, batching=False, metrics=True)
    engine = choose("tfserving" if shutil.which(BINARY) else "embedded", options, [entry])
    address = f"127.0.0.1:{options.port}"
    say(f"[4/5] serving on the {engine.name} server at grpc://{address}")
    with running(engine, log=serve_dir / "server.log"):
        say("[5/5] predicting the run's held-out images over gRPC, one request each")
        result = _predict_test_split(run, address, exported.version)
        result.engine = engine.name
        result.rest_address = f"127.0.0.1:{options.rest_api_port}"
        result.paths = {
            "data": str(data),
            "run": str(run.path),
            "plots": ", ".join(sorted(p.name for p in run.path.glob("*.png"))),
            "export": str(exported.path),
            "server log": str(serve_dir / "server.log"),
        }
        write_json(workdir / RESULT, asdict(result) | {"agrees": result.agrees})
        if not result.agrees:
            raise ZooError(
                "the served model's answers differ from the run's test metrics "
                f"(served {result.served_confusion}, run {result.run_confusion}); "
                f"see {workdir / RESULT}"
            )
        if on_serving is not None:
            on_serving(result, engine)
    return result


def _predict_test_split(run: Any, address: str, version: int) -> DemoResult:
    """Send each test image's bytes to serving_default; tally answers as the run did."""
    import numpy as np

    from zoo.data.dataset import load_image_set
    from zoo.serve.client import ServingClient

    settings = run.config["settings"]
    images = load_image_set(
        settings["data"],
        val_split=settings["val_split"],
        test_split=settings["test_split"],
        labels=run.labels,
        channels=run.geometry.channels,
    )
    recorded = run.config["data"]["split_digests"]["test"]
    if images.split_digest("test") != recorded:
        raise ZooError(f"{settings['data']} changed since the run; its test split is not the run's")
    labels = list(run.labels)
    confusion = [[0] * len(labels) for _ in labels]
    latencies = []
    with ServingClient(address) as client:
        for sample in images.split("test"):
            payload = Path(sample.path).read_bytes()
            started = time.perf_counter()
            outputs = client.predict(MODEL, {"images": [payload]})
            latencies.append((time.perf_counter() - started) * 1000)
            confusion[sample.label][int(np.argmax(outputs["probabilities"][0]))] += 1
    latencies.sort()
    return DemoResult(
        model=MODEL,
        engine="",
        address=address,
        rest_address=None,
        version=version,
        labels=labels,
        images=len(latencies),
        served_confusion=confusion,
        run_confusion=[list(row) for row in run.metrics["test"]["confusion"]],
        latency_ms={
            "p50": statistics.median(latencies),
            "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        },
    )
