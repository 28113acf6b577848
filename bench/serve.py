"""The embedded server's throughput and latency, against calling the same SavedModel directly.

An astro_cnn export (64 px, trained one epoch on synthetic galaxies) is served by the
embedded server in another process. Measured in one run:

1. images per second through gRPC Predict (``predict_images``, float pixels) against a
   direct in-process call of the loaded SavedModel's signature, at batch 1 and 32
   (goal: at least 0.9 of the direct throughput at batch 32);
2. 16 concurrent clients sending one image each, with server-side batching off and on
   (goal: batching at least 2x the throughput), with p50 and p99 latency; and the same
   against tensorflow_model_server where it is installed;
3. the ceiling for that ratio on this machine: a direct call at batch 16 (what batching
   can at best turn 16 single-image requests into) against the unbatched server.

Run: python bench/serve.py [--seconds 10] [--plot bench/serve.png]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def throughput(call, seconds: float) -> float:
    call()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        count += call()
    return count / (time.perf_counter() - started)


def concurrent(
    address: str, pixels: np.ndarray, clients: int, seconds: float
) -> tuple[float, float, float]:
    from zoo.serve.client import ServingClient

    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def work() -> None:
        with ServingClient(address, retries=8) as client:
            mine = []
            while time.perf_counter() < stop:
                started = time.perf_counter()
                client.predict("galaxies", {"images": pixels[:1]}, signature="predict_images")
                mine.append(time.perf_counter() - started)
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    return len(latencies) / elapsed, statistics.median(latencies) * 1000, p99 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--plot", type=Path, help="Also draw the figures into this PNG.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zoo-bench-"))
    os.environ["ZOO_HOME"] = str(work / "home")
    import tensorflow as tf

    import zoo
    from zoo.data.synth import write_synthetic_dataset
    from zoo.serve.client import ServingClient
    from zoo.serve.config import ModelEntry, write_model_config
    from zoo.serve.engines.embedded import EmbeddedEngine
    from zoo.serve.server.flags import ServerOptions
    from zoo.serve.setup import write_server_files

    data = work / "galaxies"
    write_synthetic_dataset(data, per_class=30, size=64, bands=3, seed=0)
    run = zoo.finetune("astro_cnn", data, work / "run", strategy="head", epochs=1, progress=False)
    version = zoo.export(run.path, work / "models", "galaxies").path
    pixels = np.random.default_rng(0).uniform(0, 255, (32, 64, 64, 3)).astype("float32")
    direct = tf.saved_model.load(str(version)).signatures["predict_images"]
    entry = ModelEntry("galaxies", version.parent)

    def served(batching: bool, engine_class: type = EmbeddedEngine) -> tuple[EmbeddedEngine, str]:
        folder = Path(tempfile.mkdtemp(dir=work))
        options = ServerOptions(
            port=free_port(),
            model_config_file=str(write_model_config(folder / "m.config", [entry])),
        )
        write_server_files(options, folder, batching=batching, metrics=False)
        engine = engine_class(options, [entry])
        engine.start(log=folder / "server.log")
        engine.wait_ready()
        return engine, f"127.0.0.1:{options.port}"

    engine, address = served(batching=False)
    print("| batch | gRPC Predict (images/s) | direct call (images/s) | ratio |")
    print("|---:|---:|---:|---:|")
    single: list[tuple[int, float, float]] = []
    with ServingClient(address) as client:
        for batch in (1, 32):
            images = pixels[:batch]
            grpc_rate = throughput(
                lambda images=images: len(
                    client.predict("galaxies", {"images": images}, signature="predict_images")[
                        "probabilities"
                    ]
                ),
                args.seconds,
            )
            direct_rate = throughput(
                lambda images=images: len(direct(images=tf.constant(images))["probabilities"]),
                args.seconds,
            )
            print(
                f"| {batch} | {grpc_rate:.0f} | {direct_rate:.0f} | {grpc_rate / direct_rate:.2f} |",
                flush=True,
            )
            single.append((batch, grpc_rate, direct_rate))
    rows = [("off", *concurrent(address, pixels, 16, args.seconds))]
    engine.stop()
    engine, address = served(batching=True)
    rows.append(("on", *concurrent(address, pixels, 16, args.seconds)))
    engine.stop()
    if shutil.which("tensorflow_model_server"):  # the real server, where it is installed
        from zoo.serve.engines.tfserving import TFServingEngine

        for batching in (False, True):
            engine, address = served(batching, TFServingEngine)
            rows.append(
                (
                    f"{'on' if batching else 'off'}, tensorflow_model_server",
                    *concurrent(address, pixels, 16, args.seconds),
                )
            )
            engine.stop()
    print("\n| batching | 16 clients, 1 image each (images/s) | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|")
    for name, rate, p50, p99 in rows:
        print(f"| {name} | {rate:.0f} | {p50:.1f} | {p99:.1f} |")
    print(f"batching / no batching: {rows[1][1] / rows[0][1]:.2f}")
    ceiling = throughput(
        lambda: len(direct(images=tf.constant(pixels[:16]))["probabilities"]), args.seconds
    )
    print(
        f"ceiling: direct call at batch 16, {ceiling:.0f} images/s, "
        f"{ceiling / rows[0][1]:.2f} of the unbatched server"
    )
    if args.plot:
        plot(args.plot, single, rows, ceiling)


def plot(
    path: Path,
    single: list[tuple[int, float, float]],
    rows: list[tuple[str, float, float, float]],
    ceiling: float,
) -> None:
    """Throughput per client pattern, beside what the same model does called directly."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    names = [f"batch {b}" for b, _, _ in single]
    x = np.arange(len(names))
    left.bar(x - 0.2, [g for _, g, _ in single], 0.4, label="gRPC Predict")
    left.bar(x + 0.2, [d for _, _, d in single], 0.4, label="direct call")
    left.set_xticks(x, names)
    left.set_ylabel("images / s")
    left.set_title("one client")
    left.legend()
    labels = [f"batching {name}\np50 {p50:.0f} ms, p99 {p99:.0f} ms" for name, _, p50, p99 in rows]
    right.bar(range(len(rows)), [rate for _, rate, _, _ in rows], 0.5)
    right.axhline(ceiling, color="grey", linestyle="--", label="direct call, batch 16")
    right.set_xticks(range(len(rows)), labels)
    right.set_title("16 clients, one image each")
    right.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
