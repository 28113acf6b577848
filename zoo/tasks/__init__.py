"""What a run learns to predict: classes, numbers, labels or Galaxy Zoo vote fractions.

A task decides the head's last layer, the loss, how a split is scored and plotted, and
what the exported model serves (Predict outputs, and the Classify or Regress signature).
Everything else (data, backbone, phases, feature cache, export) is shared. The data side
of each task (which catalog columns, how they are checked) is ``zoo.data.targets``.
"""

from __future__ import annotations

from typing import Any

from zoo.data.dataset import ImageSet, target_array
from zoo.data.targets import TASKS
from zoo.data.targets import Task as TaskName
from zoo.errors import ConfigError
from zoo.tasks.classify import Classify
from zoo.tasks.multilabel import Multilabel
from zoo.tasks.regress import Regress
from zoo.tasks.task import Task, TaskMetrics
from zoo.tasks.votes import Votes

#: Output names the exported signatures use for themselves.
RESERVED_OUTPUTS = frozenset(
    {"features", "probabilities", "top_labels", "top_indices", "top_scores", "predictions",
     "predicted", "labels", "concentrations", "fractions", "classes", "scores", "outputs"}
)  # fmt: skip

__all__ = ["TASKS", "Task", "TaskMetrics", "TaskName", "task_for", "task_from_record"]


def task_for(images: ImageSet) -> Task:
    """The task of a loaded data set (a regression's scale comes from its training split)."""
    task: Task
    if images.task == "regress":
        task = Regress.from_targets(images.labels, target_array(images.split("train")))
    else:
        task = {"classify": Classify, "multilabel": Multilabel, "votes": Votes}[images.task](
            images.labels
        )
    _check_names(task)
    return task


def task_from_record(record: dict[str, Any] | None, labels: tuple[str, ...]) -> Task:
    """The task config.json recorded (a run from before tasks classified ``labels``)."""
    if not record or record["name"] == "classify":
        return Classify(labels)
    if record["name"] == "regress":
        return Regress(record["outputs"], record["mean"], record["std"])
    return {"multilabel": Multilabel, "votes": Votes}[record["name"]](record["outputs"])


def _check_names(task: Task) -> None:
    if task.name == "classify":
        return
    names = set(task.outputs) | {q for q, _ in getattr(task, "questions", [])}
    clash = sorted(names & RESERVED_OUTPUTS)
    if clash:
        raise ConfigError(
            f"target column(s) {', '.join(clash)} share a name with an output the exported "
            "model serves; rename them in the catalog"
        )
