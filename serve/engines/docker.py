"""TF Serving's docker image as an engine: models and config files mounted read-only.

Each model's base folder is mounted at ``/models/NAME`` and a config naming those paths
is written beside the host's; the gRPC and REST ports are published on the host address
asked for; ``--gpu`` takes ``tensorflow/serving:latest-gpu`` with ``--gpus all``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

from zoo.serve.config import write_model_config
from zoo.serve.engines.base import Engine
from zoo.serve.options import to_flags

IMAGE = "tensorflow/serving"
CONFIG_DIR = "/zoo-config"


def docker_available() -> bool:
    """True when a docker client is installed and its engine answers."""
    if not shutil.which("docker"):
        return False
    done = subprocess.run(["docker", "info"], capture_output=True, timeout=20)
    return done.returncode == 0


class DockerEngine(Engine):
    name = "docker"

    @property
    def container(self) -> str:
        return f"zoo-serve-{os.getpid()}-{self.options.port}"

    def command(self) -> list[str]:
        options = self.options
        folder = Path(options.model_config_file).parent
        inside = [dataclasses.replace(e, base_path=Path("/models") / e.name) for e in self.entries]
        write_model_config(folder / "docker.config", inside)
        container = dataclasses.replace(
            options,
            port=8500,
            rest_api_port=8501 if options.rest_api_port else 0,
            model_config_file=f"{CONFIG_DIR}/docker.config",
            batching_parameters_file=_inside(options.batching_parameters_file),
            monitoring_config_file=_inside(options.monitoring_config_file),
            ssl_config_file=_inside(options.ssl_config_file),
        )
        command = ["docker", "run", "--rm", "--name", self.container]
        command += ["-p", f"{options.host}:{options.port}:8500"]
        if options.rest_api_port:
            command += ["-p", f"{options.host}:{options.rest_api_port}:8501"]
        for entry in self.entries:
            command += ["-v", f"{Path(entry.base_path).resolve()}:/models/{entry.name}:ro"]
        command += ["-v", f"{folder.resolve()}:{CONFIG_DIR}:ro"]
        if self.gpu:
            command += ["--gpus", "all"]
        image = f"{IMAGE}:latest-gpu" if self.gpu else f"{IMAGE}:latest"
        return [*command, image, *to_flags(container, zoo_flags=False)]

    def stop(self, timeout: float = 30.0) -> None:
        """``docker stop`` sends SIGTERM to the server in the container, then waits."""
        subprocess.run(
            ["docker", "stop", "-t", str(int(timeout)), self.container], capture_output=True
        )
        super().stop(timeout)


def _inside(path: str) -> str:
    return f"{CONFIG_DIR}/{Path(path).name}" if path else ""
