"""Where a run trains: this process alone, or one worker of a ``TF_CONFIG`` cluster.

Every rule that differs on a cluster lives here, so the recipe reads the same either way:

- a restarted worker continues the cluster's unfinished run (it runs the same command);
- only the chief writes the run folder; another worker trains beside it in scratch space;
- the strategy is MultiWorkerMirroredStrategy, after every member answered, and
  ``--batch-size`` is the global batch;
- each worker reads its share of the training files;
- the frozen backbone's feature cache and the batch-norm re-estimation are off (each
  worker would compute them on its own share), with a note in the run summary;
- an error a collective raises when a peer is gone is ClusterMemberLost (the command,
  run again, continues); any other error is the run's own and is raised as it is.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tensorflow as tf

from zoo.errors import ClusterMemberLost
from zoo.train.cluster import Cluster, read_cluster
from zoo.train.config import FinetuneConfig
from zoo.train.distribute import choose_strategy

#: What a collective raises when a peer is gone (Unavailable) or came back as a new
#: process (Aborted: "a different incarnation"), and what the ops queued behind it raise.
MEMBER_LOST = (
    tf.errors.UnavailableError,
    tf.errors.AbortedError,
    tf.errors.CancelledError,
    tf.errors.DeadlineExceededError,
)


@dataclass(frozen=True)
class Workers:
    """This process's place: alone (``cluster`` None) or a member of a cluster."""

    cluster: Cluster | None = None

    @classmethod
    def from_environment(cls) -> Workers:
        return cls(read_cluster())

    @property
    def size(self) -> int:
        return self.cluster.size if self.cluster else 1

    @property
    def rank(self) -> int:
        return self.cluster.rank if self.cluster else 0

    @property
    def on_cluster(self) -> bool:
        return self.cluster is not None

    @property
    def writes_run(self) -> bool:
        """Whether this process writes the run folder: alone, or the cluster's chief."""
        return self.cluster is None or self.cluster.is_chief

    @property
    def name(self) -> str:
        return f"{self.cluster.task_type} {self.cluster.task_index}" if self.cluster else "local"

    def settings(self, config: FinetuneConfig, unfinished: bool) -> FinetuneConfig:
        """A restarted worker runs the command it started with: the cluster's unfinished
        run continues instead of starting over."""
        if self.cluster is not None and unfinished and not (config.resume or config.force):
            return dataclasses.replace(config, resume=True)
        return config

    def strategy(self, config: FinetuneConfig) -> tuple[Any, str]:
        """The distribution strategy and its description for the run record."""
        strategy, name = choose_strategy(self.cluster, config.cluster_timeout)
        if self.size > 1:
            name += (
                f"; --batch-size {config.batch_size} is the global batch, "
                f"{config.batch_size // self.size} per worker"
            )
        return strategy, name

    def shares_files(self) -> bool:
        """Whether each worker reads a share of the training files (two or more)."""
        return self.size > 1

    def feature_cache(self, wanted: bool) -> tuple[bool, str | None]:
        """Whether the head trains on cached features here, and a note if it cannot."""
        if wanted and self.size > 1:
            return False, (
                f"feature cache: off on a cluster of {self.size} workers; the head trained "
                "on images through the frozen backbone"
            )
        return wanted, None

    def batch_norm_estimate(self, wanted: bool) -> tuple[bool, str | None]:
        """Whether batch-norm statistics are re-estimated here, and a note if they cannot be."""
        if wanted and self.size > 1:
            return False, (
                "batch-norm statistics: not re-estimated on a cluster (each worker would "
                "measure its own share); the moving statistics were kept"
            )
        return wanted, None

    def lost_member(self, exc: BaseException) -> ClusterMemberLost | None:
        """The error to raise for ``exc`` when it means a peer is gone; None otherwise."""
        if self.size == 1 or not isinstance(exc, MEMBER_LOST):
            return None
        return ClusterMemberLost(
            f"the cluster lost a member ({exc.message.strip().splitlines()[0]}); with "
            "every worker running the same command again, the run continues from its "
            "last full epoch"
        )

    def scratch_prefix(self) -> str:
        assert self.cluster is not None
        return f"zoo-{self.cluster.task_type}{self.cluster.task_index}-"

    def resume_hint(self, out: str | Path) -> str:
        if self.writes_run:
            return (
                f"interrupted; the run in {out} was checkpointed after its last full epoch: "
                "continue it with --resume (resume=True)"
            )
        return f"interrupted; restart {self.name} with --resume"
