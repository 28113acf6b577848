"""Frozen-backbone features, computed once and kept on disk for later runs, and tf.data on them.

While the backbone is frozen, every epoch would push the same images through the same
network; the head can train on the features instead. The cache lives under
``$ZOO_HOME/features/<key>/`` where the key hashes the backbone's weights, its
preprocessing, the input size, the bands and the set of views; inside, one ``.npy`` per
image, named by the hash of the image file's bytes. Changing any of these computes new
features; adding images computes only theirs.

With augmentation on, the cache holds the features of the 8 views of each image
(quarter-turns and flips; 4 half-turn/flip views for non-square inputs) and training
draws one view per image and epoch. A backbone whose features do not change across the
views (astro_cnn) is detected on the first batch, and only one view is stored.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from zoo.data.dataset import ImageSet, Sample, target_array
from zoo.data.images import ImageGeometry
from zoo.data.pipeline import image_dataset
from zoo.dihedral import DIHEDRAL_VIEWS, dihedral_batch, view_ids, with_seeds
from zoo.fs import atomic_file, read_json, write_json
from zoo.paths import zoo_home
from zoo.progress import Progress

MANIFEST = "cache.json"


@dataclass(frozen=True)
class CacheStats:
    """What one call did: how many images came from disk and how many were computed."""

    key: str
    reused: int
    computed: int
    views: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "reused": self.reused,
            "computed": self.computed,
            "stored_views": self.views,
        }


@dataclass
class SplitFeatures:
    """Features (samples, stored views, features) and labels (or targets) of a run's splits."""

    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    stats: dict[str, CacheStats]

    def datasets(self, batch_size: int, seed: int) -> tuple[tf.data.Dataset, tf.data.Dataset, int]:
        """Training batches (one random stored view per image and epoch) and validation batches.

        Returns (train, val, steps per epoch); validation uses the first (identity) view.
        """
        (train_x, train_y), (val_x, val_y) = self.splits["train"], self.splits["val"]

        def one_view(pair: Any, view_seed: Any) -> tuple[Any, Any]:
            stack, label = pair
            view = tf.random.stateless_uniform((), view_seed, 0, tf.shape(stack)[0], dtype=tf.int32)
            return stack[view], label

        examples = tf.data.Dataset.from_tensor_slices((train_x, train_y)).shuffle(
            len(train_y), seed=seed, reshuffle_each_iteration=True
        )
        train = (
            with_seeds(examples, seed)
            .map(one_view, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )
        val = tf.data.Dataset.from_tensor_slices((val_x[:, 0], val_y)).batch(batch_size)
        return train, val, math.ceil(len(train_y) / batch_size)

    def identity_view(self, split: str) -> np.ndarray:
        """The features of a split's images as they are (view 0)."""
        return self.splits[split][0][:, 0]


def split_features(
    encoder: keras.Model,
    images: ImageSet,
    geometry: ImageGeometry,
    *,
    scheme: str,
    augment: bool,
    batch_size: int = 32,
    progress: bool = False,
) -> SplitFeatures:
    """Cached features of the train, val and test splits; 8 views of training images if augmenting.

    ``encoder`` maps raw images to features (preprocessing and backbone, inference mode).
    """
    digest = weights_digest(encoder)
    groups = (("train",), ("val", "test")) if augment else (("train", "val", "test"),)
    result = SplitFeatures({}, {})
    for splits in groups:
        views = DIHEDRAL_VIEWS if augment and splits == ("train",) else 1
        samples = {split: images.split(split) for split in splits}
        key = features_key(digest, scheme, geometry, views)
        features, stats = cached_features(
            encoder,
            [s for group in samples.values() for s in group],
            key=key,
            geometry=geometry,
            views=views,
            batch_size=batch_size,
            progress=progress,
        )
        result.stats["+".join(splits)] = stats
        start = 0
        for split, group in samples.items():
            result.splits[split] = (features[start : start + len(group)], target_array(group))
            start += len(group)
    return result


def weights_digest(model: keras.Model) -> str:
    """A hash of every variable of the model: any change to the weights changes it."""
    digest = hashlib.sha256()
    for variable in model.weights:
        digest.update(variable.path.encode())
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.hexdigest()


def features_key(weights: str, scheme: str, geometry: ImageGeometry, views: int) -> str:
    """A hash of everything that determines the features of an image (``weights``: weights_digest)."""
    settings = {
        "weights": weights,
        "scheme": scheme,
        "size": list(geometry.size),
        "channels": geometry.channels,
        "bands": [str(b) for b in geometry.bands or ()],
        "views": views,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:24]


def cached_features(
    encoder: keras.Model,
    samples: Sequence[Sample],
    *,
    key: str,
    geometry: ImageGeometry,
    views: int,
    batch_size: int = 32,
    progress: bool = False,
) -> tuple[np.ndarray, CacheStats]:
    """Features of every sample, shape (samples, stored views, features)."""
    folder = zoo_home() / "features" / key
    paths = [folder / s.digest[:2] / f"{s.digest}.npy" for s in samples]
    todo = [i for i, path in enumerate(paths) if not path.exists()]
    stored_views = _stored_views(folder, views)
    if todo:
        stored_views = _compute(
            encoder,
            [samples[i] for i in todo],
            [paths[i] for i in todo],
            folder,
            geometry=geometry,
            views=views,
            batch_size=batch_size,
            progress=progress,
        )
    features = (
        np.stack([np.load(path) for path in paths]) if paths else np.zeros((0, 1, 0), "float32")
    )
    return features, CacheStats(key, len(samples) - len(todo), len(todo), stored_views)


def _stored_views(folder: Path, views: int) -> int:
    manifest = folder / MANIFEST
    if manifest.exists():
        return int(read_json(manifest)["stored_views"])
    return views


def _compute(
    encoder: keras.Model,
    samples: Sequence[Sample],
    paths: Sequence[Path],
    folder: Path,
    *,
    geometry: ImageGeometry,
    views: int,
    batch_size: int,
    progress: bool,
) -> int:
    ids = view_ids(geometry.size[0] == geometry.size[1]) if views > 1 else (0,)
    pixels = image_dataset(samples, geometry, batch_size=batch_size, labels=False)
    if (folder / MANIFEST).exists():
        stored = _stored_views(folder, len(ids))
    elif len(ids) == 1:
        stored = 1
        _write_manifest(folder, stored, 1)
    else:  # the first batch tells whether the views differ at all
        first = next(iter(pixels))
        sample = np.stack([encoder.predict_on_batch(dihedral_batch(first, v)) for v in ids], axis=1)
        stored = 1 if _invariant(sample) else len(ids)
        _write_manifest(folder, stored, len(ids))
    batches = math.ceil(len(samples) / batch_size)
    label = f"Computing features of {len(samples)} images"
    with Progress(label, batches * stored, enabled=progress) as bar:
        per_view = [
            encoder.predict(
                pixels.map(lambda batch, v=v: dihedral_batch(batch, v)),
                verbose=0,
                callbacks=[_BatchCounter(bar)],
            )
            for v in ids[:stored]
        ]
    for row, path in zip(np.stack(per_view, axis=1), paths, strict=True):
        with atomic_file(path) as partial, open(partial, "wb") as handle:
            np.save(handle, row.astype("float32"))
    return stored


class _BatchCounter(keras.callbacks.Callback):
    """Reports each predicted batch to a Progress."""

    def __init__(self, bar: Progress) -> None:
        super().__init__()
        self.bar = bar

    def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.bar.update()


def _invariant(stack: np.ndarray) -> bool:
    if stack.shape[1] == 1:
        return True
    scale = np.abs(stack).max() + 1e-12
    return bool(np.abs(stack - stack[:, :1]).max() <= 1e-4 * scale)


def _write_manifest(folder: Path, stored: int, views: int) -> None:
    note = "features are identical across views; one stored" if stored == 1 and views > 1 else ""
    write_json(folder / MANIFEST, {"stored_views": stored, "views": views, "note": note})
