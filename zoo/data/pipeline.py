"""tf.data pipelines: decode in parallel, resize, fit channels, augment, batch, prefetch.

Pixels keep their raw values here; the backbone's preprocessing is a layer inside the
model, so the exported model takes the same raw images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from zoo.data.dataset import Sample
from zoo.data.images import Band, fit_channels, read_image

AUTOTUNE = tf.data.AUTOTUNE
DIHEDRAL_VIEWS = 8


def decode_image(
    path: Any, size: tuple[int, int], channels: int, bands: Sequence[Band] | None
) -> Any:
    """One file (a string tensor) as float32 (height, width, channels) at the backbone's size.

    Reading runs in Python (PIL, astropy); resizing stays in the TensorFlow graph.
    """

    def read(raw_path: bytes) -> np.ndarray:
        return fit_channels(read_image(raw_path.decode(), bands), channels).astype("float32")

    image = tf.numpy_function(read, [path], tf.float32, stateful=False)
    image.set_shape((None, None, channels))
    same = tf.reduce_all(tf.equal(tf.shape(image)[:2], size))
    resized = tf.cond(same, lambda: image, lambda: tf.image.resize(image, size, antialias=True))
    resized.set_shape((*size, channels))
    return resized


def image_dataset(
    samples: Sequence[Sample],
    *,
    size: tuple[int, int],
    channels: int,
    bands: Sequence[Band] | None = None,
    batch_size: int = 32,
    shuffle: bool = False,
    augment: bool = False,
    seed: int | None = None,
    labels: bool = True,
) -> tf.data.Dataset:
    """Batches of (images, labels), or of images alone with ``labels=False``."""
    paths = [s.path for s in samples]
    targets = np.array([s.label for s in samples], dtype="int32")
    dataset = tf.data.Dataset.from_tensor_slices((paths, targets))
    if shuffle:
        dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)

    def decode(path: Any, label: Any) -> tuple[Any, Any]:
        return decode_image(path, size, channels, bands), label

    dataset = dataset.map(
        decode, num_parallel_calls=AUTOTUNE, deterministic=seed is not None or not shuffle
    )
    if augment:
        square = size[0] == size[1]
        dataset = dataset.map(
            lambda image, label: (random_view(image, seed, square), label),
            num_parallel_calls=AUTOTUNE,
        )
    if not labels:
        dataset = dataset.map(lambda image, label: image)
    return dataset.batch(batch_size).prefetch(AUTOTUNE)


def rot90(images: Any, turns: int) -> Any:
    """A batch of images (NHWC) turned by ``turns`` quarter-turns, counter-clockwise.

    Written with transposes and reversals: tf.image.rot90 adds shape assertions that cost
    time inside a network.
    """
    turns %= 4
    if turns == 1:
        return tf.reverse(tf.transpose(images, (0, 2, 1, 3)), axis=[1])
    if turns == 2:
        return tf.reverse(images, axis=[1, 2])
    if turns == 3:
        return tf.reverse(tf.transpose(images, (0, 2, 1, 3)), axis=[2])
    return images


def dihedral_batch(images: Any, view: int) -> Any:
    """View 0-7 of a batch: ``view // 4`` flips left-right, ``view % 4`` quarter-turns."""
    flipped = tf.reverse(images, axis=[2]) if view >= 4 else images
    return rot90(flipped, view % 4)


def dihedral_view(image: Any, view: Any) -> Any:
    """View 0-7 of an image: ``view // 4`` flips it left-right, ``view % 4`` quarter-turns it."""
    flipped = tf.cond(view >= 4, lambda: tf.reverse(image, axis=[-2]), lambda: image)
    return tf.image.rot90(flipped, k=view % 4)


def random_view(image: Any, seed: int | None = None, square: bool = True) -> Any:
    """A random quarter-turn and flip: galaxies have no 'up' (half-turns only if not square)."""
    if square:
        view = tf.random.uniform((), 0, DIHEDRAL_VIEWS, dtype=tf.int32, seed=seed)
    else:
        view = 2 * tf.random.uniform((), 0, DIHEDRAL_VIEWS // 2, dtype=tf.int32, seed=seed)
    return dihedral_view(image, view)
