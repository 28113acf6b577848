"""The training loss: cross-entropy on class indices, with optional label smoothing.

Keras's sparse cross-entropy has no label smoothing, and one-hot labels would change
every dataset; smoothing is ``(1 - e) * CE(y) + e * mean_k(-log p_k)``, the same as
cross-entropy against labels of ``1 - e + e/K`` and ``e/K``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

EPSILON = 1e-7


@keras.saving.register_keras_serializable(package="zoo")
class SparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of softmax probabilities against class indices, label-smoothed."""

    def __init__(self, label_smoothing: float = 0.0, name: str = "crossentropy", **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        log_p = ops.log(ops.clip(ops.cast(y_pred, "float32"), EPSILON, 1.0))
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        picked = ops.take_along_axis(log_p, labels[:, None], axis=-1)[:, 0]
        smoothed = ops.mean(log_p, axis=-1)
        e = self.label_smoothing
        return -((1 - e) * picked + e * smoothed)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
