"""Engines that run a model server: one start / wait / stop interface, one set of flags.

- ``tfserving``: ``tensorflow_model_server`` on PATH;
- ``docker``: the ``tensorflow/serving`` image (``:latest-gpu`` with ``--gpus all`` on a GPU);
- ``embedded``: zoo's own server, in a subprocess: the default when neither exists.

Each is given TF Serving's command-line flags and config files (``zoo.serve.options``,
``zoo.serve.config``), waits until every model answers AVAILABLE to GetModelStatus, and
stops with SIGTERM, which lets requests in flight finish.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from typing import Literal, get_args

from zoo.errors import ConfigError
from zoo.serve.config import ModelEntry
from zoo.serve.engines.base import BINARY, Engine, running
from zoo.serve.engines.docker import DockerEngine, docker_available
from zoo.serve.engines.embedded import EmbeddedEngine
from zoo.serve.engines.tfserving import TFServingEngine
from zoo.serve.options import ServerOptions

EngineName = Literal["auto", "tfserving", "docker", "embedded"]
ENGINES: tuple[str, ...] = get_args(EngineName)
__all__ = ["BINARY", "ENGINES", "Engine", "EngineName", "choose", "running"]


def choose(
    name: EngineName | str,
    options: ServerOptions,
    entries: Sequence[ModelEntry],
    *,
    gpu: bool = False,
) -> Engine:
    """The engine asked for; ``auto``: tensorflow_model_server, else docker, else embedded."""
    if name not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}; got {name!r}")
    if name == "auto":
        name = (
            "tfserving" if shutil.which(BINARY) else "docker" if docker_available() else "embedded"
        )
    if name == "tfserving" and not shutil.which(BINARY):
        raise ConfigError(
            f"--engine tfserving: no {BINARY} on PATH; install it or use --engine embedded"
        )
    if name == "docker" and not docker_available():
        raise ConfigError(
            "--engine docker: no docker engine answers; start it or use --engine embedded"
        )
    engine = {"tfserving": TFServingEngine, "docker": DockerEngine, "embedded": EmbeddedEngine}[
        name
    ]
    return engine(options, entries, gpu=gpu)
