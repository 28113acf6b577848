"""The one way an image becomes what a backbone reads: its channels, then its size.

Training reads files in Python (PIL, astropy) and the exported model decodes PNG and
JPEG bytes in the graph; from the decoded pixels on, both run this same TensorFlow
function, so the served model sees what training saw.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from zoo.data.images import ImageGeometry


def conform(image: Any, geometry: ImageGeometry) -> Any:
    """A float32 image (height, width, any channels) at the backbone's channels and size.

    Channels are fitted as ``zoo.data.images.channels_fit`` allows (grey repeated to
    colour, colour averaged to grey); the size is reached by antialiased bilinear
    resizing, skipped when it already matches.
    """
    image = tf.cast(image, tf.float32)
    channels = geometry.channels
    have = tf.shape(image)[-1]
    if channels == 1:
        fitted = tf.reduce_mean(image, axis=-1, keepdims=True)
    else:
        usable = tf.debugging.Assert(
            tf.logical_or(tf.equal(have, 1), tf.equal(have, channels)),
            ["an image with", have, f"channels cannot be fitted to {channels}"],
        )
        with tf.control_dependencies([usable]):
            fitted = tf.cond(
                tf.equal(have, 1), lambda: tf.tile(image, [1, 1, channels]), lambda: image
            )
    fitted = tf.ensure_shape(fitted, (None, None, channels))
    size = geometry.size
    same = tf.reduce_all(tf.equal(tf.shape(fitted)[:2], size))
    resized = tf.cond(same, lambda: fitted, lambda: tf.image.resize(fitted, size, antialias=True))
    return tf.ensure_shape(resized, (*size, channels))


def decode_encoded(data: Any) -> Any:
    """PNG or JPEG bytes (a scalar string tensor) as pixels without alpha, as PIL reads them.

    Palette images come out as colour, and an alpha channel is dropped, as
    ``zoo.data.images`` does when it reads a file.
    """
    image = tf.io.decode_image(data, expand_animations=False)
    have = tf.shape(image)[-1]
    return tf.cond(
        tf.logical_or(tf.equal(have, 2), tf.equal(have, 4)),
        lambda: image[..., :-1],
        lambda: image,
    )
