"""Helpers the tests import: installing small distributions, running the zoo script."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ZOO_SCRIPT = Path(sys.executable).with_name("zoo")
#: A registry file adding a narrow astro_cnn, small enough to train in seconds on a CPU.
SMALL_REGISTRY = "backbones:\n  astro_small: {base: astro_cnn, options: {width: 8}}\n"
#: The classes of the shared run (conftest.py's shared_run).
CLASSES = ("smooth_round", "edge_on", "merger")
#: Files beside the shared run's synthetic PNGs, as a user's folder holds them.
MODES = {"grey.png": "L", "rgba.png": "RGBA", "palette.png": "P", "photo.jpg": "RGB"}


def free_port() -> int:
    """A loopback port nothing listens on now (servers in tests never take fixed ports)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_distribution(
    site: Path, name: str, entry_points: dict[str, str], modules: dict[str, str]
) -> Path:
    """Install a minimal distribution into ``site`` the way pip lays one out.

    ``entry_points`` maps plugin names to modules in the ``zoo`` group; ``modules`` maps
    module file names to their source.
    """
    site.mkdir(parents=True, exist_ok=True)
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[zoo]\n{lines}\n")
    for filename, source in modules.items():
        (site / filename).write_text(textwrap.dedent(source))
    return site


def run_zoo(*args: str, pythonpath: Path | None = None, env: dict[str, str] | None = None):
    """Run the installed ``zoo`` console script in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    if pythonpath is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(pythonpath), full_env.get("PYTHONPATH", "")) if p
        )
    return subprocess.run(
        [str(ZOO_SCRIPT), *args], capture_output=True, text=True, env=full_env, timeout=900
    )


@dataclass
class Served:
    """What the loopback server serves and what it saw; tests flip its modes."""

    root: Path
    base_url: str = ""
    requests: list[dict[str, str]] = field(default_factory=list)
    cut_after: int | None = None
    ignore_range: bool = False

    def serve(self, relative: str, data: bytes) -> str:
        """Publish ``data`` at ``relative`` and return its URL."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return f"{self.base_url}/{relative}"


class RangeHandler(BaseHTTPRequestHandler):
    """Serves files under ``Served.root``, honouring ``Range: bytes=N-``."""

    def do_GET(self) -> None:
        served: Served = self.server.served  # type: ignore[attr-defined]
        served.requests.append({"path": self.path, **dict(self.headers)})
        path = served.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = self._range_start()
        if start is None or served.ignore_range:
            start = 0
            self.send_response(200)
        else:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if served.cut_after is not None:
            body = body[: served.cut_after]
            self.close_connection = True
        self.wfile.write(body)

    def _range_start(self) -> int | None:
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        return int(match.group(1)) if match else None

    def log_message(self, format: str, *args: object) -> None:
        pass


def write_tf1_model(folder: Path) -> dict:
    """A TF1 graph, as the old tutorials wrote them: X -> conv1 (+ batch norm) ->
    ConvLayer_output -> logits, trained a step and saved with tf.compat.v1.train.Saver."""
    import numpy as np
    import tensorflow as tf

    inputs = np.random.default_rng(5).random((4, 16, 16, 1), dtype="float32")
    graph = tf.Graph()
    with graph.as_default():
        v1 = tf.compat.v1
        X = v1.placeholder(tf.float32, (None, 16, 16, 1), name="X")
        y = v1.placeholder(tf.int64, (None,), name="y")
        with v1.variable_scope("conv1"):
            weights = v1.get_variable("weights", (3, 3, 1, 8))
            biases = v1.get_variable("biases", (8,), initializer=v1.constant_initializer(0.1))
            conv = tf.nn.conv2d(X, weights, 1, "SAME") + biases
        with v1.variable_scope("conv1_bn"):
            gamma = v1.get_variable("gamma", (8,), initializer=v1.ones_initializer())
            beta = v1.get_variable("beta", (8,), initializer=v1.zeros_initializer())
            mean = v1.get_variable(
                "moving_mean",
                (8,),
                trainable=False,
                initializer=v1.random_normal_initializer(seed=1),
            )
            var = v1.get_variable(
                "moving_variance",
                (8,),
                trainable=False,
                initializer=v1.random_uniform_initializer(0.5, 2.0, seed=2),
            )
            normed = tf.nn.batch_normalization(conv, mean, var, beta, gamma, 1e-3)
        features = tf.reduce_mean(tf.nn.relu(normed), axis=[1, 2], name="ConvLayer_output")
        keep_prob = v1.placeholder_with_default(1.0, (), name="keep_prob")
        with v1.variable_scope("logits"):
            dense = v1.get_variable("weights", (8, 3))
            logits = tf.matmul(tf.nn.dropout(features, rate=1 - keep_prob), dense)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        )
        step = v1.train.get_or_create_global_step()
        train = v1.train.MomentumOptimizer(0.1, 0.9).minimize(loss, global_step=step)
        saver = v1.train.Saver()
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            session.run(train, {X: inputs, y: [0, 1, 2, 0]})
            expected = session.run(features, {X: inputs})
            prefix = saver.save(session, str(folder / "model.ckpt"), global_step=1)
    return {"prefix": prefix, "meta": prefix + ".meta", "inputs": inputs, "features": expected}


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text`` (Linux's /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue  # it ended while we looked
        if text in command and state != "Z":
            found.append(int(entry.name))
    return found


def wait_until_gone(text: str, timeout: float) -> list[int]:
    """Wait for every process mentioning ``text`` to end; those left after ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while (left := processes_mentioning(text)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left
