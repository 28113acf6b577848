"""Regression of catalog columns (axis ratio, Sérsic index, redshift, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from zoo.tasks.task import Task, TaskMetrics


class Regress(Task):
    """One or more numbers per image.

    The head predicts each target in standard deviations from its training mean, and its
    last layer turns them back into the catalog's units, so the model (and the served
    one) answers in those units while every target weighs the same in the loss.
    """

    name = "regress"

    def __init__(self, outputs: Sequence[str], mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__(outputs)
        self.mean = [float(m) for m in mean]
        self.std = [float(s) if s > 0 else 1.0 for s in std]

    @classmethod
    def from_targets(cls, outputs: Sequence[str], training: np.ndarray) -> Regress:
        return cls(outputs, training.mean(axis=0).tolist(), training.std(axis=0).tolist())

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "mean": self.mean, "std": self.std}

    def output_layer(self, x: Any) -> Any:
        standardized = keras.layers.Dense(len(self.outputs), dtype="float32", name="standardized")(
            x
        )
        return keras.layers.Normalization(
            mean=self.mean,
            variance=[s * s for s in self.std],
            invert=True,
            dtype="float32",
            name="predictions",
        )(standardized)

    def loss(self, label_smoothing: float) -> Any:
        from zoo.tasks.losses import ScaledSquaredError

        return ScaledSquaredError(self.std)

    def score(
        self, truth: np.ndarray, predicted: np.ndarray, validation: dict[str, Any] | None = None
    ) -> TaskMetrics:
        from zoo.tasks.metrics import regression_metrics

        return regression_metrics(truth, predicted, self.outputs)

    def serving_outputs(self, predicted: Any, settings: dict[str, Any]) -> dict[str, Any]:
        import tensorflow as tf

        values = tf.cast(predicted, tf.float32)
        return {"predictions": values, **{t: values[:, i] for i, t in enumerate(self.outputs)}}

    def regression_output(self, predicted: Any) -> Any:
        import tensorflow as tf

        return tf.cast(predicted, tf.float32)[:, 0]
