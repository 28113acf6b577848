"""Multi-label: any number of labels per image (a bar and spiral arms and a merger)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from zoo.tasks.task import Task, TaskMetrics


class Multilabel(Task):
    """An independent sigmoid per label; each label's threshold is chosen on validation."""

    name = "multilabel"
    example_api = "classify"

    def output_layer(self, x: Any) -> Any:
        return keras.layers.Dense(
            len(self.outputs), activation="sigmoid", dtype="float32", name="probabilities"
        )(x)

    def loss(self, label_smoothing: float) -> Any:
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)

    def metrics(self) -> list[Any]:
        return [keras.metrics.BinaryAccuracy(name="accuracy")]

    def score(
        self, truth: np.ndarray, predicted: np.ndarray, validation: dict[str, Any] | None = None
    ) -> TaskMetrics:
        from zoo.tasks.metrics import multilabel_metrics

        thresholds = validation.get("thresholds") if validation else None
        return multilabel_metrics(truth, predicted, self.outputs, thresholds)

    def export_settings(self, metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
        chosen = metrics.get("val", {}).get("thresholds", {})
        return {"thresholds": [float(chosen.get(label, 0.5)) for label in self.outputs]}

    def serving_outputs(self, predicted: Any, settings: dict[str, Any]) -> dict[str, Any]:
        import tensorflow as tf

        probabilities = tf.cast(predicted, tf.float32)
        thresholds = tf.constant(settings["thresholds"], tf.float32)
        return {
            "probabilities": probabilities,
            "predicted": tf.cast(probabilities >= thresholds, tf.int32),
            "labels": self._labels(probabilities),
        }

    def _labels(self, probabilities: Any) -> Any:
        """The label names, one row per image (as Classify's ``classes``)."""
        import tensorflow as tf

        return tf.tile(tf.constant(self.outputs)[None], [tf.shape(probabilities)[0], 1])

    def classification_outputs(self, predicted: Any, settings: dict[str, Any]) -> tuple[Any, Any]:
        """Every label with its probability (TF Serving's Classify lists classes per image)."""
        import tensorflow as tf

        probabilities = tf.cast(predicted, tf.float32)
        return self._labels(probabilities), probabilities
