"""Classification: a softmax over the classes (zoo's first task and the default)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from zoo.tasks.task import Task, TaskMetrics


class Classify(Task):
    """One class per image: softmax probabilities, cross-entropy, accuracy and F1."""

    name = "classify"
    default_hidden = ()
    example_api = "classify"

    def output_layer(self, x: Any) -> Any:
        # float32 softmax: stable under mixed precision
        return keras.layers.Dense(
            len(self.outputs), activation="softmax", dtype="float32", name="probabilities"
        )(x)

    def loss(self, label_smoothing: float) -> Any:
        from zoo.train.loss import SparseCrossentropy

        return SparseCrossentropy(label_smoothing)

    def metrics(self) -> list[Any]:
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def score(
        self, truth: np.ndarray, predicted: np.ndarray, validation: dict[str, Any] | None = None
    ) -> TaskMetrics:
        from zoo.train.metrics import classification_metrics

        return classification_metrics(truth, predicted, self.outputs)

    def serving_outputs(self, predicted: Any, settings: dict[str, Any]) -> dict[str, Any]:
        import tensorflow as tf

        probabilities = tf.cast(predicted, tf.float32)
        top = tf.math.top_k(probabilities, k=min(settings["top_k"], len(self.outputs)))
        return {
            "probabilities": probabilities,
            "top_labels": tf.gather(tf.constant(self.outputs), top.indices),
            "top_indices": top.indices,
            "top_scores": top.values,
        }

    def classification_outputs(self, predicted: Any, settings: dict[str, Any]) -> tuple[Any, Any]:
        top = self.serving_outputs(predicted, settings)
        return top["top_labels"], top["top_scores"]
