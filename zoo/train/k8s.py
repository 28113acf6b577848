"""A Kubernetes training job for a cluster of workers: what ``deploy/training/`` holds.

One Job and one Service per worker: the Service gives the worker a stable address, and
every worker's ``TF_CONFIG`` lists those addresses. A Job restarts its pod's container
when it fails, with the same command, which continues the unfinished run (see
``zoo.train.finetune``). The data and the runs live on one shared volume claim.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from zoo.manifests import dump_yaml

NAME = "zoo-train"
PORT = 2222
WORK = "/work"


def training_job(
    workers: int,
    args: Sequence[str],
    *,
    image: str = "zoo-train:latest",
    name: str = NAME,
    claim: str = "zoo-work",
    gpus: int = 1,
) -> dict[str, str]:
    """File name to YAML text: the volume claim, then a Service and a Job per worker.

    ``args`` follow ``zoo finetune`` (backbone, data and options; paths under /work).
    """
    if workers < 1:
        raise ValueError(f"a cluster needs at least one worker, got {workers}")
    addresses = [f"{name}-{i}:{PORT}" for i in range(workers)]
    header = (
        f"# Written by zoo.train.k8s.training_job: worker {{index}} of {workers}; "
        f"apply the whole folder with kubectl apply -f .\n"
    )
    files = {
        "volume.yaml": dump_yaml(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim, "labels": {"app": name}},
                "spec": {
                    "accessModes": ["ReadWriteMany"],
                    "resources": {"requests": {"storage": "50Gi"}},
                },
            }
        )
    }
    for index in range(workers):
        labels = {"app": name, "worker": str(index)}
        tf_config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
        resources: dict[str, Any] = {"requests": {"cpu": "2", "memory": "8Gi"}}
        if gpus:
            resources["limits"] = {"nvidia.com/gpu": gpus}
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"{name}-{index}", "labels": labels},
            "spec": {
                "selector": labels,
                "ports": [{"name": "tensorflow", "port": PORT, "targetPort": PORT}],
            },
        }
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": f"{name}-{index}", "labels": labels},
            "spec": {
                "backoffLimit": 6,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "restartPolicy": "OnFailure",
                        "containers": [
                            {
                                "name": "zoo",
                                "image": image,
                                "command": ["zoo", "finetune", *args],
                                "env": [{"name": "TF_CONFIG", "value": json.dumps(tf_config)}],
                                "ports": [{"name": "tensorflow", "containerPort": PORT}],
                                "resources": resources,
                                "volumeMounts": [{"name": "work", "mountPath": WORK}],
                            }
                        ],
                        "volumes": [
                            {"name": "work", "persistentVolumeClaim": {"claimName": claim}}
                        ],
                    },
                },
            },
        }
        note = header.format(index=index)
        files[f"service-{index}.yaml"] = note + dump_yaml(service)
        files[f"job-{index}.yaml"] = note + dump_yaml(job)
    return files
