"""The preprocessing schemes as one Keras layer, so training and export can bake it in.

Images enter as float pixels (0-255 for 8-bit files) or as flux (FITS); the layer turns
them into what the backbone was trained on. Schemes are named in the spec
(``zoo.spec.PREPROCESSING_SCHEMES``); for another number of channels than three the
per-channel ImageNet constants are replaced by their mean.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from zoo.errors import SpecError
from zoo.spec import PREPROCESSING_SCHEMES

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="zoo")
class Preprocessing(keras.layers.Layer):
    """Apply a named preprocessing scheme to a batch of images (NHWC)."""

    def __init__(self, scheme: str = "none", softening: float = 1.0, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")  # stays float32 under mixed precision
        super().__init__(**kwargs)
        if scheme not in PREPROCESSING_SCHEMES:
            known = ", ".join(PREPROCESSING_SCHEMES)
            raise SpecError(f"unknown preprocessing scheme {scheme!r}; known: {known}")
        self.scheme = scheme
        self.softening = float(softening)

    def call(self, images: Any) -> Any:
        x = tf.cast(images, self.compute_dtype)
        channels = x.shape[-1]
        if self.scheme == "tf":
            return x / 127.5 - 1.0
        if self.scheme == "caffe":
            if channels == 3:
                return x[..., ::-1] - tf.constant(CAFFE_MEAN_BGR, x.dtype)
            return x - sum(CAFFE_MEAN_BGR) / 3
        if self.scheme == "torch":
            mean, std = IMAGENET_MEAN_RGB, IMAGENET_STD_RGB
            if channels != 3:
                mean, std = (sum(mean) / 3,), (sum(std) / 3,)
            return (x / 255.0 - tf.constant(mean, x.dtype)) / tf.constant(std, x.dtype)
        if self.scheme == "asinh":
            return asinh_stretch(x, self.softening)
        return x

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scheme": self.scheme, "softening": self.softening}


def asinh_stretch(x: Any, softening: float = 1.0) -> Any:
    """Lupton et al.'s asinh stretch in units of each image's noise.

    Each image is measured in units of a robust estimate of its background noise
    (1.4826 x the median absolute deviation from the median) and passed through asinh,
    which is linear near the noise and logarithmic for bright cores: the result does not
    depend on the flux units, and faint structure is not lost beside a bright nucleus.
    """
    flat = tf.reshape(x, (tf.shape(x)[0], -1))
    median = _median(flat)
    mad = _median(tf.abs(flat - median[:, None]))
    peak = tf.reduce_max(tf.abs(flat - median[:, None]), axis=1)
    noise = tf.maximum(1.4826 * mad, tf.maximum(peak * 1e-3, 1e-12))
    scale = tf.reshape(noise * softening, (-1, 1, 1, 1))
    return tf.math.asinh((x - tf.reshape(median, (-1, 1, 1, 1))) / scale)


def _median(values: Any) -> Any:
    ordered = tf.sort(values, axis=1)
    return ordered[:, tf.shape(ordered)[1] // 2]
