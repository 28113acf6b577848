"""The dihedral group D4 on images: 4 quarter-turns, each with and without a flip.

Galaxies have no "up", so these 8 views of a cutout show the same object. Augmentation
draws one view at random, the feature cache stores the views of each image, and
astro_cnn averages its features over all 8; they share these ops, written with
transposes and reversals (``tf.image.rot90`` adds shape assertions that cost time inside
a network). View ``v`` flips left-right when ``v >= 4``, then turns ``v % 4`` quarters
counter-clockwise. A non-square image keeps its shape only under the 4 views with an
even number of quarter-turns.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

DIHEDRAL_VIEWS = 8
SHAPE_PRESERVING_VIEWS = (0, 2, 4, 6)  # half-turns and flips: for non-square images


def view_ids(square: bool) -> tuple[int, ...]:
    """The views an image of this shape has: all 8 if square, else the 4 that keep its shape."""
    return tuple(range(DIHEDRAL_VIEWS)) if square else SHAPE_PRESERVING_VIEWS


def rot90(images: Any, turns: int) -> Any:
    """A batch of images (NHWC) turned by ``turns`` quarter-turns, counter-clockwise."""
    turns %= 4
    if turns == 1:
        return tf.reverse(tf.transpose(images, (0, 2, 1, 3)), axis=[1])
    if turns == 2:
        return tf.reverse(images, axis=[1, 2])
    if turns == 3:
        return tf.reverse(tf.transpose(images, (0, 2, 1, 3)), axis=[2])
    return images


def dihedral_batch(images: Any, view: int) -> Any:
    """View ``view`` (a Python int, 0-7) of a batch of images (NHWC)."""
    flipped = tf.reverse(images, axis=[2]) if view >= 4 else images
    return rot90(flipped, view % 4)


def random_view(image: Any, seed: Any, square: bool = True) -> Any:
    """One image (HWC) in a view drawn from those its shape allows.

    ``seed`` is a stateless seed (shape [2]): the same seed gives the same view, however
    many threads map the data set.
    """
    choices = tf.constant(view_ids(square), dtype=tf.int32)
    index = tf.random.stateless_uniform((), seed, 0, len(choices), dtype=tf.int32)
    view = choices[index]
    flipped = tf.cond(view >= 4, lambda: tf.reverse(image, axis=[-2]), lambda: image)
    return tf.image.rot90(flipped, k=view % 4)


def with_seeds(dataset: tf.data.Dataset, seed: int | None) -> tf.data.Dataset:
    """Each element paired with a stateless seed, different every epoch, repeatable with ``seed``.

    Random ops inside a parallel ``map`` draw in thread order, which changes from run to
    run; a seed that travels with the element does not.
    """
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip((dataset, seeds))
