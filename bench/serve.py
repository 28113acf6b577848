"""The embedded server's throughput and latency, against calling the same SavedModel directly.

An astro_cnn export (64 px, trained one epoch on synthetic galaxies) is served by the
embedded server in another process. Measured in one run:

1. images per second through gRPC Predict against a direct in-process call of the loaded
   SavedModel's signature, at batch 1 and 32, in alternating slices (goal: at least 0.9
   of the direct throughput at batch 32), for both signatures: ``predict_images`` (float
   pixels, 48 KiB per image) and ``serving_default`` (PNG files, as `zoo predict` sends);
2. 16 concurrent clients sending one image each, with server-side batching off and on
   (goal: batching at least 2x the throughput), with p50 and p99 latency, once with
   TensorFlow choosing its op threads and once with one thread per op
   (--tensorflow_intra_op_parallelism=1); and the same against tensorflow_model_server
   where it is installed;
3. the ceiling for that ratio on this machine: direct calls with every core busy at
   batch 16 (what batching can at best turn 16 single-image requests into) against
   batch 1. No server gains more from batching than the model itself does.

Run: python bench/serve.py [--seconds 10] [--plot bench/serve.png]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

CLIENTS = 16


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def interleaved(calls: dict, seconds: float, slices: int = 10) -> dict[str, float]:
    """Images/s of each call, measured in alternating slices of ``seconds / slices``, so
    that a machine whose speed drifts during the run (a shared host) favours none of them."""
    counts = dict.fromkeys(calls, 0)
    spent = dict.fromkeys(calls, 0.0)
    for call in calls.values():
        call()
    for _ in range(slices):
        for name, call in calls.items():
            started = time.perf_counter()
            while time.perf_counter() - started < seconds / slices:
                counts[name] += call()
            spent[name] += time.perf_counter() - started
    return {name: counts[name] / spent[name] for name in calls}


def pixels(batch: int) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (batch, 64, 64, 3)).astype("float32")


def concurrent(address: str, clients: int, seconds: float) -> tuple[float, float, float]:
    """Images/s, p50 and p99 ms of ``clients`` threads each sending one image at a time."""
    from zoo.serve.client import ServingClient

    image = pixels(1)
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def work() -> None:
        with ServingClient(address, retries=8) as client:
            mine = []
            while time.perf_counter() < stop:
                started = time.perf_counter()
                client.predict("galaxies", {"images": image}, signature="predict_images")
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


def busy_rate(function, images, threads: int, seconds: float) -> float:
    """Images/s of ``threads`` threads calling ``function`` on ``images`` for ``seconds``."""
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def work(index: int) -> None:
        while time.perf_counter() < stop:
            function(images=images)
            done[index] += len(images)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / (time.perf_counter() - began)


def direct_busy(version: str, intra: int, seconds: float) -> dict[int, float]:
    """Images/s of direct calls at batch 1 and 16, from as many threads as give the most
    (1, one per core, two per core), with ``intra`` threads per op (0: TensorFlow's choice)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(intra)
    function = tf.saved_model.load(version).signatures["predict_images"]
    cores = os.cpu_count() or 1
    best = {}
    for batch in (1, 16):
        images = tf.constant(pixels(batch))
        function(images=images)
        best[batch] = max(
            busy_rate(function, images, threads, seconds / 3)
            for threads in sorted({1, cores, 2 * cores})
        )
    return best


def direct_busy_in_own_process(version: Path, intra: int, seconds: float) -> dict[int, float]:
    """``direct_busy`` in a fresh process: TensorFlow's op threads are set once per process."""
    done = subprocess.run(
        [sys.executable, __file__, "--direct", str(version), "--intra", str(intra),
         "--seconds", str(seconds)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {int(k): v for k, v in json.loads(done.stdout.splitlines()[-1]).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--plot", type=Path, help="Also draw the figures into this PNG.")
    parser.add_argument("--direct", help=argparse.SUPPRESS)  # a SavedModel: direct_busy only
    parser.add_argument("--intra", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.direct:
        print(json.dumps(direct_busy(args.direct, args.intra, args.seconds)))
        return
    work = Path(tempfile.mkdtemp(prefix="zoo-bench-"))
    os.environ["ZOO_HOME"] = str(work / "home")
    import tensorflow as tf

    import zoo
    from zoo.data.synth import write_synthetic_dataset
    from zoo.serve.client import ServingClient
    from zoo.serve.config import ModelEntry, write_model_config
    from zoo.serve.engines.embedded import EmbeddedEngine
    from zoo.serve.options import ServerOptions
    from zoo.serve.server_files import write_server_files

    data = work / "galaxies"
    write_synthetic_dataset(data, per_class=30, size=64, bands=3, seed=0)
    run = zoo.finetune("astro_cnn", data, work / "run", strategy="head", epochs=1, progress=False)
    version = zoo.export(run.path, work / "models", "galaxies").path
    entry = ModelEntry("galaxies", version.parent)

    def served(batching: bool, intra: int = 0, engine_class: type = EmbeddedEngine):
        folder = Path(tempfile.mkdtemp(dir=work))
        options = ServerOptions(
            port=free_port(),
            tensorflow_intra_op_parallelism=intra,
            model_config_file=str(write_model_config(folder / "m.config", [entry])),
        )
        write_server_files(options, folder, batching=batching, metrics=False)
        engine = engine_class(options, [entry])
        engine.start(log=folder / "server.log")
        engine.wait_ready()
        return engine, f"127.0.0.1:{options.port}"

    engine, address = served(batching=False)
    loaded = tf.saved_model.load(str(version))
    pngs = [path.read_bytes() for path in sorted(data.rglob("*.png"))[:32]]
    inputs = {  # signature: what a client sends for a batch of n images
        "predict_images": pixels,  # float pixels, 48 KiB per image
        "serving_default": lambda n: pngs[:n],  # PNG files, as `zoo predict` sends them
    }
    print("| signature | batch | gRPC Predict (images/s) | direct call (images/s) | ratio |")
    print("|---|---:|---:|---:|---:|")
    single: list[tuple[str, int, float, float]] = []
    with ServingClient(address) as client:
        for signature, make in inputs.items():
            direct = loaded.signatures[signature]
            for batch in (1, 32):
                images = make(batch)

                def served_call(images=images, signature=signature):
                    answer = client.predict("galaxies", {"images": images}, signature=signature)
                    return len(answer["probabilities"])

                def direct_call(images=images, direct=direct):
                    return len(direct(images=tf.constant(images))["probabilities"])

                rates = interleaved({"grpc": served_call, "direct": direct_call}, 2 * args.seconds)
                ratio = rates["grpc"] / rates["direct"]
                print(
                    f"| {signature} | {batch} | {rates['grpc']:.0f} | {rates['direct']:.0f} "
                    f"| {ratio:.2f} |",
                    flush=True,
                )
                single.append((signature, batch, rates["grpc"], rates["direct"]))
    engine.stop()

    rows = []  # (op threads, batching, images/s, p50, p99)
    engines = [("embedded", EmbeddedEngine)]
    if shutil.which("tensorflow_model_server"):  # the real server, where it is installed
        from zoo.serve.engines.tfserving import TFServingEngine

        engines.append(("tensorflow_model_server", TFServingEngine))
    for server_name, engine_class in engines:
        for intra in (0, 1):
            for batching in (False, True):
                engine, address = served(batching, intra, engine_class)
                rows.append(
                    (server_name, intra, batching, *concurrent(address, CLIENTS, args.seconds))
                )
                engine.stop()
    print(f"\n| server | op threads | batching | {CLIENTS} clients, 1 image each (images/s) "
          "| p50 ms | p99 ms |")  # fmt: skip
    print("|---|---|---|---:|---:|---:|")
    for server_name, intra, batching, rate, p50, p99 in rows:
        print(
            f"| {server_name} | {intra or 'auto'} | {'on' if batching else 'off'} | {rate:.0f} "
            f"| {p50:.1f} | {p99:.1f} |"
        )
    for server_name, intra, batching, rate, *_ in rows:
        if batching:
            off = next(r[3] for r in rows if r[:2] == (server_name, intra) and not r[2])
            print(f"{server_name}, op threads {intra or 'auto'}: batching {rate / off:.2f}x")

    ceilings = {intra: direct_busy_in_own_process(version, intra, args.seconds) for intra in (0, 1)}
    print("\n| op threads | direct, batch 1 (images/s) | direct, batch 16 (images/s) | ratio |")
    print("|---|---:|---:|---:|")
    for intra, rates in ceilings.items():
        print(
            f"| {intra or 'auto'} | {rates[1]:.0f} | {rates[16]:.0f} | {rates[16] / rates[1]:.2f} |"
        )
    best_1 = max(r[1] for r in ceilings.values())
    best_16 = max(r[16] for r in ceilings.values())
    print(f"ceiling: batching can gain at most {best_16 / best_1:.2f}x on this machine")
    if args.plot:
        plot(args.plot, single, rows, best_1, best_16)


def plot(
    path: Path,
    single: list[tuple[str, int, float, float]],
    rows: list[tuple[str, int, bool, float, float, float]],
    direct_1: float,
    direct_16: float,
) -> None:
    """Throughput per client pattern, beside what the same model does called directly."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = [f"{'floats' if s == 'predict_images' else 'PNGs'}\nbatch {b}" for s, b, _, _ in single]
    x = np.arange(len(names))
    left.bar(x - 0.2, [g for _, _, g, _ in single], 0.4, label="gRPC Predict")
    left.bar(x + 0.2, [d for _, _, _, d in single], 0.4, label="direct call")
    left.set_xticks(x, names)
    left.set_ylabel("images / s")
    left.set_title("one client")
    left.legend()
    labels = [
        f"{'tfms, ' if name != 'embedded' else ''}threads {intra or 'auto'}\n"
        f"batching {'on' if batching else 'off'}\np99 {p99:.0f} ms"
        for name, intra, batching, _, _, p99 in rows
    ]
    right.bar(range(len(rows)), [row[3] for row in rows], 0.5)
    right.axhline(direct_16, color="grey", linestyle="--", label="direct, batch 16, cores busy")
    right.axhline(direct_1, color="grey", linestyle=":", label="direct, batch 1, cores busy")
    right.set_xticks(range(len(rows)), labels, fontsize=8)
    right.set_title(f"{CLIENTS} clients, one image each")
    right.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
