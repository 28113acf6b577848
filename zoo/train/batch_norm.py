"""Batch-norm statistics re-estimated from the training data ("precise BN").

A network trained from scratch changes fast, and the moving averages its batch-norm
layers keep (momentum 0.9 or 0.99) lag the weights: in inference mode the network then
does much worse than in training mode, validation loss rises while the network is in
fact learning, and early stopping ends a good run. Before each validation the
statistics are computed afresh over a few thousand training images with the current
weights, as timm and detectron2 do ("precise BN", Wu & Johnson 2021, arXiv:2105.07576),
so validation, the choice of the best epoch and the saved model all see the network as
it will be used.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

#: Training images the statistics are computed over; detectron2 uses 200 batches of 16-64.
IMAGES = 2048


class BatchNormEstimator:
    """Recomputes the moving mean and variance of a backbone's batch-norm layers."""

    def __init__(self, backbone: keras.Model, preprocessing: keras.layers.Layer) -> None:
        self.layers = [
            layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)
        ]
        self.preprocessing = preprocessing
        self.probe = (
            keras.Model(backbone.inputs, [layer.input for layer in self.layers])
            if self.layers
            else None
        )

    def estimate(self, images: tf.data.Dataset, batch_size: int) -> int:
        """Set the statistics from batches of ``images`` (images, labels); returns images used."""
        if self.probe is None:
            return 0
        sums = [np.zeros(layer.moving_mean.shape, "float64") for layer in self.layers]
        squares = [np.zeros_like(total) for total in sums]
        counts = [0] * len(self.layers)
        seen = 0
        for batch, _ in images.take(max(1, IMAGES // batch_size)):
            outputs = self.probe(self.preprocessing(batch), training=True)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            for index, (layer, output) in enumerate(zip(self.layers, outputs, strict=True)):
                values = _channels_last(tf.cast(output, tf.float64), layer.axis)
                sums[index] += tf.reduce_sum(values, axis=0).numpy()
                squares[index] += tf.reduce_sum(values * values, axis=0).numpy()
                counts[index] += int(values.shape[0])
            seen += int(batch.shape[0])
        for layer, total, square, count in zip(self.layers, sums, squares, counts, strict=True):
            mean = total / count
            layer.moving_mean.assign(mean.astype("float32"))
            layer.moving_variance.assign(np.maximum(square / count - mean**2, 0).astype("float32"))
        return seen


def _channels_last(values: Any, axis: Any) -> Any:
    """The values as (elements, channels) along the layer's normalised axis."""
    axis = axis[0] if isinstance(axis, (list, tuple)) else axis
    rank = len(values.shape)
    axis = axis % rank
    order = [i for i in range(rank) if i != axis] + [axis]
    moved = tf.transpose(values, order)
    return tf.reshape(moved, (-1, values.shape[axis]))
