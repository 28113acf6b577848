"""Keras layers for astro_cnn's dihedral symmetry (imports TensorFlow: load only to build)."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from zoo.dihedral import DIHEDRAL_VIEWS, dihedral_batch


@keras.saving.register_keras_serializable(package="zoo")
class DihedralViews(keras.layers.Layer):
    """Stack the 8 views of each image (4 rotations, with and without a flip) on the batch axis.

    The output batch is view-major: all images in view 0, then all in view 1, and so on.
    """

    def call(self, images: Any) -> Any:
        return tf.concat([dihedral_batch(images, view) for view in range(DIHEDRAL_VIEWS)], axis=0)

    def compute_output_shape(self, input_shape: Any) -> Any:
        batch = None if input_shape[0] is None else input_shape[0] * DIHEDRAL_VIEWS
        return (batch, *input_shape[1:])


@keras.saving.register_keras_serializable(package="zoo")
class DihedralPool(keras.layers.Layer):
    """Average each image's features over its 8 views: the result ignores rotations and flips."""

    def call(self, features: Any) -> Any:
        per_view = tf.reshape(features, (DIHEDRAL_VIEWS, -1, features.shape[-1]))
        return tf.reduce_mean(per_view, axis=0)

    def compute_output_shape(self, input_shape: Any) -> Any:
        batch = None if input_shape[0] is None else input_shape[0] // DIHEDRAL_VIEWS
        return (batch, input_shape[-1])
