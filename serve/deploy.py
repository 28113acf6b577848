"""Deployment files for TF Serving: a docker compose project and Kubernetes manifests.

``zoo serve --emit compose|k8s MODELS`` writes them for the models given (folders of
exported models or a model config file). Both run the ``tensorflow/serving`` image with
``tensorflow_model_server`` driven by the same flags and config files as ``zoo serve``:
the models under ``/models/NAME`` (read-only), the config files under ``/config``, the
standard gRPC health service on for probes. YAML is built as data and dumped, never
hand-written, and the tests validate it against the Compose specification's schema and
Kubernetes' resource schemas.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import text_format

from zoo.errors import ConfigError
from zoo.fs import write_text
from zoo.manifests import dump_yaml
from zoo.serve.config import ModelEntry, model_config
from zoo.serve.options import ServerOptions, to_flags
from zoo.serve.server_files import BatchingOptions, batching_text, monitoring_text

KINDS = ("compose", "k8s")
IMAGE = "tensorflow/serving"
APP = "zoo-serving"
MODELS_DIR = "/models"
CONFIG_DIR = "/config"
#: Written into the files, so that they do not depend on the machine that wrote them.
FLEET_BATCHING = BatchingOptions(
    max_batch_size=32, batch_timeout_micros=2000, num_batch_threads=4, max_enqueued_batches=10
)


@dataclass(frozen=True)
class DeploySettings:
    """What the files ask for: GPUs, batching, ports, and how Kubernetes scales."""

    gpu: bool = False
    batching: bool = False
    port: int = 8500
    rest_port: int = 8501
    host: str = "127.0.0.1"  # compose publishes the ports on this host address
    intra_op_threads: int = 0
    min_replicas: int = 1
    max_replicas: int = 4
    volume_claim: str = "zoo-models"

    @property
    def image(self) -> str:
        return f"{IMAGE}:latest-gpu" if self.gpu else f"{IMAGE}:latest"


def emit(
    kind: str,
    entries: Sequence[ModelEntry],
    out: Path,
    settings: DeploySettings,
    *,
    force: bool = False,
) -> list[Path]:
    """Write the ``kind`` files into ``out``; a different file already there needs ``force``."""
    if kind not in KINDS:
        raise ConfigError(f"--emit must be one of {', '.join(KINDS)}; got {kind!r}")
    out = out.expanduser().resolve()
    files = (
        compose_files(entries, out, settings) if kind == "compose" else k8s_files(entries, settings)
    )
    clashes = [
        name for name, text in files.items()
        if (out / name).exists() and (out / name).read_text() != text
    ]  # fmt: skip
    if clashes and not force:
        raise ConfigError(
            f"{out} already holds other versions of {', '.join(clashes)}; "
            "pass --force to replace them, or --emit-to another folder"
        )
    return [write_text(out / name, text) for name, text in files.items()]


def server_flags(settings: DeploySettings) -> list[str]:
    """tensorflow_model_server's command line inside the container."""
    options = ServerOptions(
        port=settings.port,
        rest_api_port=settings.rest_port,
        model_config_file=f"{CONFIG_DIR}/models.config",
        monitoring_config_file=f"{CONFIG_DIR}/monitoring.config",
        enable_grpc_healthcheck_service=True,
        tensorflow_intra_op_parallelism=settings.intra_op_threads,
    )
    if settings.batching:
        options.enable_batching = True
        options.batching_parameters_file = f"{CONFIG_DIR}/batching.config"
    return to_flags(options, zoo_flags=False)


def config_files(entries: Sequence[ModelEntry], settings: DeploySettings) -> dict[str, str]:
    """The config files the server reads, with the models' paths inside the container."""
    inside = [dataclasses.replace(e, base_path=Path(MODELS_DIR) / e.name) for e in entries]
    files = {
        "models.config": text_format.MessageToString(model_config(inside)),
        "monitoring.config": monitoring_text(),
    }
    if settings.batching:
        files["batching.config"] = batching_text(FLEET_BATCHING)
    return files


def compose_files(
    entries: Sequence[ModelEntry], out: Path, settings: DeploySettings
) -> dict[str, str]:
    """compose.yaml and config/: each model's folder mounted from the host, read-only."""
    volumes = [
        {
            "type": "bind",
            "source": _relative(Path(e.base_path).expanduser().resolve(), out),
            "target": f"{MODELS_DIR}/{e.name}",
            "read_only": True,
        }
        for e in entries
    ]
    volumes.append({"type": "bind", "source": "./config", "target": CONFIG_DIR, "read_only": True})
    service: dict[str, Any] = {
        "image": settings.image,
        "entrypoint": ["tensorflow_model_server"],
        "command": server_flags(settings),
        "ports": [
            f"{settings.host}:{settings.port}:{settings.port}",
            f"{settings.host}:{settings.rest_port}:{settings.rest_port}",
        ],
        "volumes": volumes,
        "restart": "unless-stopped",
        "stop_grace_period": "30s",
    }
    if settings.gpu:
        service["deploy"] = {
            "resources": {
                "reservations": {
                    "devices": [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
                }
            }
        }
    header = (
        _header("compose", entries) + "# Start: docker compose up -d   Stop: docker compose down\n"
    )
    files = {"compose.yaml": header + dump_yaml({"name": APP, "services": {"tfserving": service}})}
    files |= {f"config/{name}": text for name, text in config_files(entries, settings).items()}
    return files


def k8s_files(entries: Sequence[ModelEntry], settings: DeploySettings) -> dict[str, str]:
    """A ConfigMap, a volume claim, a Deployment, a Service and an autoscaler."""
    header = _header("k8s", entries)
    labels = {"app": APP}
    resources: dict[str, Any] = {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"memory": "8Gi"},
    }
    if settings.gpu:
        resources["limits"]["nvidia.com/gpu"] = 1
    port = settings.port
    container = {
        "name": "tfserving",
        "image": settings.image,
        "command": ["tensorflow_model_server"],
        "args": server_flags(settings),
        "ports": [
            {"name": "grpc", "containerPort": port},
            {"name": "http", "containerPort": settings.rest_port},
        ],
        "resources": resources,
        "volumeMounts": [
            {"name": "models", "mountPath": MODELS_DIR, "readOnly": True},
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        ],
        # Loading big models takes minutes: the startup probe allows 10 before liveness counts.
        "startupProbe": {"grpc": {"port": port, "service": "ModelService"}, "periodSeconds": 10, "failureThreshold": 60},
        "readinessProbe": {"grpc": {"port": port}, "periodSeconds": 5},
        "livenessProbe": {"grpc": {"port": port, "service": "ModelService"}, "periodSeconds": 10, "failureThreshold": 3},
    }  # fmt: skip
    manifests = {
        "configmap.yaml": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{APP}-config", "labels": labels},
            "data": config_files(entries, settings),
        },
        "volume.yaml": {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": settings.volume_claim, "labels": labels},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "20Gi"}},
            },
        },
        "deployment.yaml": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": APP, "labels": labels},
            "spec": {
                "replicas": settings.min_replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [container],
                        "terminationGracePeriodSeconds": 60,
                        "volumes": [
                            {
                                "name": "models",
                                "persistentVolumeClaim": {
                                    "claimName": settings.volume_claim,
                                    "readOnly": True,
                                },
                            },
                            {"name": "config", "configMap": {"name": f"{APP}-config"}},
                        ],
                    },
                },
            },
        },
        "service.yaml": {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": APP, "labels": labels},
            "spec": {
                "selector": labels,
                "ports": [
                    {"name": "grpc", "port": port, "targetPort": "grpc", "appProtocol": "grpc"},
                    {
                        "name": "http",
                        "port": settings.rest_port,
                        "targetPort": "http",
                        "appProtocol": "http",
                    },
                ],
            },
        },  # fmt: skip
        "autoscaler.yaml": {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": APP, "labels": labels},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
                "minReplicas": settings.min_replicas,
                "maxReplicas": settings.max_replicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 70},
                        },
                    }
                ],
            },
        },
    }
    note = (
        f"# The models go on the volume claim '{settings.volume_claim}' as NAME/<version>/"
        " (the exported base folder's contents).\n# Apply: kubectl apply -f .\n"
    )
    return {name: header + note + dump_yaml(doc) for name, doc in manifests.items()}


def _header(kind: str, entries: Sequence[ModelEntry]) -> str:
    names = ", ".join(e.name for e in entries)
    return f"# Written by `zoo serve --emit {kind}` for the models: {names}.\n"


def _relative(path: Path, start: Path) -> str:
    """A bind-mount source relative to the compose file, so the folder can move with it."""
    relative = os.path.relpath(path, start)
    return relative if relative.startswith("..") else f"./{relative}"
