"""tf.data pipelines: decode in parallel, resize, fit channels, augment, batch, prefetch.

Pixels keep their raw values here; the backbone's preprocessing is a layer inside the
model, so the exported model takes the same raw images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from zoo.data.conform import conform
from zoo.data.dataset import ImageSet, Sample, target_array
from zoo.data.images import ImageGeometry, read_image
from zoo.dihedral import random_view, with_seeds

AUTOTUNE = tf.data.AUTOTUNE


def decode_image(path: Any, geometry: ImageGeometry) -> Any:
    """One file (a string tensor) as float32 (height, width, channels) at the backbone's size.

    Reading runs in Python (PIL, astropy); fitting channels and size stays in the graph,
    where the exported model runs the same function (``zoo.data.conform``).
    """

    def read(raw_path: bytes) -> np.ndarray:
        return read_image(raw_path.decode(), geometry.bands)

    image = tf.numpy_function(read, [path], tf.float32, stateful=False)
    image.set_shape((None, None, None))
    return conform(image, geometry)


def image_dataset(
    samples: Sequence[Sample],
    geometry: ImageGeometry,
    *,
    batch_size: int = 32,
    shuffle: bool = False,
    augment: bool = False,
    seed: int | None = None,
    labels: bool = True,
) -> tf.data.Dataset:
    """Batches of (images, labels or targets), or of images alone with ``labels=False``."""
    paths = [s.path for s in samples]
    targets = target_array(samples)
    dataset = tf.data.Dataset.from_tensor_slices((paths, targets))
    if shuffle:
        dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)

    def decode(path: Any, label: Any) -> tuple[Any, Any]:
        return decode_image(path, geometry), label

    dataset = dataset.map(
        decode, num_parallel_calls=AUTOTUNE, deterministic=seed is not None or not shuffle
    )
    if augment:
        square = geometry.size[0] == geometry.size[1]
        dataset = with_seeds(dataset, seed).map(
            lambda pair, view_seed: (random_view(pair[0], view_seed, square), pair[1]),
            num_parallel_calls=AUTOTUNE,
        )
    if not labels:
        dataset = dataset.map(lambda image, label: image)
    return dataset.batch(batch_size).prefetch(AUTOTUNE)


def worker_share(samples: Sequence[Sample], index: int, workers: int) -> Sequence[Sample]:
    """The files worker ``index`` of ``workers`` reads: every n-th, so shares differ by one at most."""
    return samples[index::workers]


def worker_shards(
    strategy: Any,
    samples: Sequence[Sample],
    geometry: ImageGeometry,
    *,
    batch_size: int,
    augment: bool,
    seed: int,
    class_weights: dict[int, float] | None,
) -> tuple[Any, int]:
    """Training batches for a cluster, sharded by file: each worker reads only its share
    of ``samples`` (every n-th file), so each image is seen once per epoch across the
    cluster. ``batch_size`` is global. Returns the distributed dataset and steps per epoch.
    """

    def share(context: tf.distribute.InputContext) -> tf.data.Dataset:
        mine = worker_share(samples, context.input_pipeline_id, context.num_input_pipelines)
        dataset = image_dataset(
            mine,
            geometry,
            batch_size=context.get_per_replica_batch_size(batch_size),
            shuffle=True,
            augment=augment,
            seed=seed,
        )
        if class_weights:
            table = tf.constant([class_weights[i] for i in range(len(class_weights))], tf.float32)
            dataset = dataset.map(lambda images, labels: (images, labels, tf.gather(table, labels)))
        return dataset.repeat()

    return strategy.distribute_datasets_from_function(share), math.ceil(len(samples) / batch_size)


def split_datasets(
    images: ImageSet,
    geometry: ImageGeometry,
    *,
    batch_size: int,
    augment: bool,
    seed: int,
) -> tuple[tf.data.Dataset, tf.data.Dataset, int]:
    """Shuffled (and augmented) training batches, validation batches, steps per epoch."""
    train_samples = images.split("train")
    train = image_dataset(
        train_samples, geometry, batch_size=batch_size, shuffle=True, augment=augment, seed=seed
    )
    val = image_dataset(images.split("val"), geometry, batch_size=batch_size)
    return train, val, math.ceil(len(train_samples) / batch_size)
