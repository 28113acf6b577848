"""What every task provides: the head's last layer, the loss, the scores, the served outputs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np


class TaskMetrics(Protocol):
    """One split's evaluation, whatever the task. ``plot`` writes its figure into
    ``folder``, named for ``split`` ("" for an evaluation's one set: see plot_name)."""

    def to_dict(self) -> dict[str, Any]: ...
    def headline(self) -> dict[str, Any]: ...
    def lines(self) -> list[str]: ...
    def plot(self, folder: Path, split: str) -> None: ...


def plot_name(kind: str, split: str) -> str:
    """``confusion_val.png`` for a run's split, ``confusion.png`` for an evaluation."""
    return f"{kind}_{split}.png" if split else f"{kind}.png"


class Task:
    """A kind of prediction the head makes from the backbone's features.

    ``outputs`` name the head's output columns (labels.txt holds them): the classes, the
    regressed catalog columns, the labels, or the answers of the vote questions.
    """

    name: ClassVar[str]
    #: Hidden ReLU layers of the head unless --hidden says otherwise. Continuous targets
    #: and label sets gain from one (bench/tasks.py: R² of bulge fraction 0.938 to
    #: 0.975, vote-fraction MAE 0.035 to 0.029, multi-label macro F1 0.877 to 0.892);
    #: a classifier's linear head is the transfer-learning recipe.
    default_hidden: ClassVar[tuple[int, ...]] = (128,)
    #: TF Serving's API on tf.Examples that serves the task: "classify" or "regress".
    example_api: ClassVar[str] = "regress"

    def __init__(self, outputs: Sequence[str]) -> None:
        self.outputs = tuple(outputs)

    def to_dict(self) -> dict[str, Any]:
        """What config.json records, so that evaluation and export rebuild the task."""
        return {"name": self.name, "outputs": list(self.outputs)}

    def output_layer(self, x: Any) -> Any:
        """The head's last layers on its hidden features ``x`` (float32 outputs)."""
        raise NotImplementedError

    def loss(self, label_smoothing: float) -> Any:
        raise NotImplementedError

    def metrics(self) -> list[Any]:
        """Keras metrics reported each epoch beside the loss."""
        return []

    def score(
        self, truth: np.ndarray, predicted: np.ndarray, validation: dict[str, Any] | None = None
    ) -> TaskMetrics:
        """One split's metrics; ``validation`` is the validation split's (as recorded),
        for a task that chooses something there (multi-label thresholds)."""
        raise NotImplementedError

    def serving_outputs(self, predicted: Any, settings: dict[str, Any]) -> dict[str, Any]:
        """The Predict signatures' outputs (besides ``features``) for the head's output.

        ``settings`` are what the export reads from the run (``export_settings``).
        """
        raise NotImplementedError

    def export_settings(self, metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """What the served outputs need from the run's recorded metrics, per split."""
        return {}

    def regression_output(self, predicted: Any) -> Any | None:
        """The one value per image the Regress API serves, or None (no Regress signature)."""
        return None

    def classification_outputs(
        self, predicted: Any, settings: dict[str, Any]
    ) -> tuple[Any, Any] | None:
        """(classes, scores) for the Classify API, or None (no Classify signature)."""
        return None
