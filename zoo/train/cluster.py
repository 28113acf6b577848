"""A ``TF_CONFIG`` cluster, as Kubernetes training jobs describe one: who this process is,
whether it writes the run, and whether the other workers answer.

TensorFlow's MultiWorkerMirroredStrategy reads the same variable. zoo reads it first to
check it (a wrong index or a missing entry is a clear error, not a hang), to give the
chief the run folder, and to wait for the other workers for a set time, then name the
ones that never came.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

from zoo.errors import ConfigError, TrainingError

TASK_TYPES = ("chief", "worker")


@dataclass(frozen=True)
class Cluster:
    """The cluster's addresses and this process's place in it."""

    chief: str | None
    workers: tuple[str, ...]
    task_type: str
    task_index: int

    @property
    def members(self) -> tuple[tuple[str, int, str], ...]:
        """(task type, index, address) of every process that trains."""
        chief = (("chief", 0, self.chief),) if self.chief else ()
        return chief + tuple(("worker", i, a) for i, a in enumerate(self.workers))

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def rank(self) -> int:
        """This process's position in ``members``: its shard of the data."""
        return next(
            i for i, (kind, index, _) in enumerate(self.members)
            if (kind, index) == (self.task_type, self.task_index)
        )  # fmt: skip

    @property
    def is_chief(self) -> bool:
        """The chief writes the run: the 'chief' task, else worker 0 (TensorFlow's rule)."""
        return self.rank == 0

    @property
    def address(self) -> str:
        return self.members[self.rank][2]

    def describe(self) -> str:
        role = "chief" if self.is_chief else "not the chief: writes nothing to the run folder"
        return f"{self.task_type} {self.task_index} of {self.size} at {self.address} ({role})"


def read_cluster(environ: Mapping[str, str] | None = None) -> Cluster | None:
    """The cluster ``TF_CONFIG`` describes, checked; None when it is not set."""
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        chiefs, workers = list(cluster.get("chief", [])), list(cluster.get("worker", []))
        task_type, task_index = str(task["type"]), int(task.get("index", 0))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            'TF_CONFIG must be JSON like {"cluster": {"worker": ["host:port", ...]}, '
            f'"task": {{"type": "worker", "index": 0}}}}; got {text!r} ({exc})'
        ) from None
    unknown = sorted(set(cluster) - set(TASK_TYPES))
    if unknown:
        raise ConfigError(
            f"TF_CONFIG: task types {', '.join(unknown)} are not supported; "
            "zoo trains with chief and worker tasks"
        )
    if len(chiefs) > 1:
        raise ConfigError(f"TF_CONFIG: at most one chief, got {', '.join(chiefs)}")
    if task_type not in TASK_TYPES:
        raise ConfigError(f"TF_CONFIG: task type {task_type!r} must be chief or worker")
    listed = chiefs if task_type == "chief" else workers
    if not 0 <= task_index < len(listed):
        raise ConfigError(
            f"TF_CONFIG: task index {task_index} is not in the {task_type} list "
            f"({', '.join(listed) or 'empty'}); give each worker its own index from 0"
        )
    members = chiefs + workers
    repeated = sorted({a for a in members if members.count(a) > 1})
    if repeated:
        raise ConfigError(f"TF_CONFIG: addresses listed twice: {', '.join(repeated)}")
    return Cluster(chiefs[0] if chiefs else None, tuple(workers), task_type, task_index)


def rendezvous(cluster: Cluster, timeout: float) -> None:
    """Listen on this member's address and wait until every other member does too.

    MultiWorkerMirroredStrategy blocks without end while a member is missing; this check
    comes first. It turns a worker that never comes, a port that is taken (two workers
    given one index) or a bad address into an error that names them, after ``timeout``
    seconds. The socket is closed before TensorFlow listens on the same port.
    """
    _, port = _split(cluster.address)
    with socket.socket() as own:  # on every interface, as TensorFlow's server listens
        own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            own.bind(("", port))
        except OSError as exc:
            raise TrainingError(
                f"{cluster.task_type} {cluster.task_index} cannot listen on {cluster.address} "
                f"({exc.strerror}): is another worker running with this task index?"
            ) from None
        own.listen(16)
        deadline = time.monotonic() + timeout
        waiting = [m for i, m in enumerate(cluster.members) if i != cluster.rank]
        while waiting:
            waiting = [m for m in waiting if not _answers(m[2])]
            if waiting and time.monotonic() > deadline:
                names = ", ".join(
                    f"{kind} {index} at {address}" for kind, index, address in waiting
                )
                raise TrainingError(
                    f"the cluster is incomplete after {timeout:g} s: {names} never answered. "
                    "Start every worker with the same command and TF_CONFIG (each with its "
                    "own task index), or raise --cluster-timeout"
                )
            if waiting:
                time.sleep(0.5)


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _answers(address: str) -> bool:
    try:
        with socket.create_connection(_split(address), timeout=2):
            return True
    except (OSError, ValueError):
        return False
