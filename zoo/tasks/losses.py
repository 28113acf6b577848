"""The losses of the tasks beyond classification (``zoo.train.loss`` holds the classifier's).

Both are registered with Keras so a saved model's compile config names them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class ScaledSquaredError(keras.losses.Loss):
    """Mean squared error with each target measured in its own standard deviations.

    Targets on different scales (a redshift near 1, a flux near 10^4) then weigh the
    same, as if every target were standardised.
    """

    def __init__(
        self, scale: Sequence[float] = (), name: str = "scaled_squared_error", **kwargs: Any
    ):
        super().__init__(name=name, **kwargs)
        self.scale = [float(s) for s in scale]

    def call(self, y_true: Any, y_pred: Any) -> Any:
        error = (ops.cast(y_pred, "float32") - ops.cast(y_true, "float32")) / ops.convert_to_tensor(
            self.scale, "float32"
        )
        return ops.mean(ops.square(error), axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="zoo")
class DirichletMultinomial(keras.losses.Loss):
    """Negative log-likelihood of volunteers' vote counts, one Dirichlet-multinomial per question.

    The model predicts Dirichlet concentrations for each question's answers; the counts
    of the ``N`` volunteers who answered are a Dirichlet-multinomial draw from them
    (Walmsley et al. 2022, MNRAS 509, 3966, eq. 3). A question nobody answered has
    ``N = 0`` and a likelihood of exactly 1, so it adds nothing: the mask is built in.
    ``questions`` are each question's (first, end) columns.
    """

    def __init__(
        self,
        questions: Sequence[Sequence[int]] = (),
        name: str = "dirichlet_multinomial",
        **kwargs: Any,
    ):
        super().__init__(name=name, **kwargs)
        self.questions = [(int(a), int(b)) for a, b in questions]

    def call(self, y_true: Any, y_pred: Any) -> Any:
        counts = tf.cast(y_true, tf.float32)
        alpha = tf.cast(y_pred, tf.float32)
        total = tf.zeros(tf.shape(counts)[:1])
        for start, end in self.questions:
            k, a = counts[:, start:end], alpha[:, start:end]
            n, a_sum = tf.reduce_sum(k, -1), tf.reduce_sum(a, -1)
            log_likelihood = (
                tf.math.lgamma(n + 1)
                + tf.math.lgamma(a_sum)
                - tf.math.lgamma(n + a_sum)
                + tf.reduce_sum(
                    tf.math.lgamma(k + a) - tf.math.lgamma(a) - tf.math.lgamma(k + 1), -1
                )
            )
            total -= log_likelihood
        return total

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "questions": [list(q) for q in self.questions]}
