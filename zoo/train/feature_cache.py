"""Frozen-backbone features, computed once and kept on disk for later runs.

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
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.data.dataset import Sample
from zoo.data.images import Band
from zoo.data.pipeline import dihedral_batch, image_dataset
from zoo.paths import zoo_home


@dataclass(frozen=True)
class CacheStats:
    """What one call did: how many images came from disk and how many were computed."""

    key: str
    reused: int
    computed: int
    views: int


def weights_digest(backbone: Any) -> str:
    """A hash of every variable of the backbone: any change to the weights changes it."""
    digest = hashlib.sha256()
    for variable in backbone.weights:
        digest.update(variable.path.encode())
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.hexdigest()


def features_key(
    weights: str,
    scheme: str,
    size: tuple[int, int],
    channels: int,
    bands: Sequence[Band] | None,
    views: int,
) -> str:
    """A hash of everything that determines the features of an image (``weights``: weights_digest)."""
    settings = {
        "weights": weights,
        "scheme": scheme,
        "size": list(size),
        "channels": channels,
        "bands": [str(b) for b in bands or ()],
        "views": views,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:24]


def cached_features(
    encoder: Any,
    samples: Sequence[Sample],
    *,
    key: str,
    size: tuple[int, int],
    channels: int,
    bands: Sequence[Band] | None,
    views: int,
    batch_size: int = 32,
    progress: bool = True,
) -> tuple[np.ndarray, CacheStats]:
    """Features of every sample, shape (samples, stored views, features).

    ``encoder`` maps raw images to features (preprocessing and backbone, inference mode).
    """
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
            size=size,
            channels=channels,
            bands=bands,
            views=views,
            batch_size=batch_size,
            progress=progress,
        )
    features = (
        np.stack([np.load(path) for path in paths]) if paths else np.zeros((0, 1, 0), "float32")
    )
    return features, CacheStats(key, len(samples) - len(todo), len(todo), stored_views)


def _stored_views(folder: Path, views: int) -> int:
    manifest = folder / "cache.json"
    if manifest.exists():
        return int(json.loads(manifest.read_text())["stored_views"])
    return views


def _compute(
    encoder: Any,
    samples: Sequence[Sample],
    paths: Sequence[Path],
    folder: Path,
    *,
    size: tuple[int, int],
    channels: int,
    bands: Sequence[Band] | None,
    views: int,
    batch_size: int,
    progress: bool,
) -> int:
    view_ids = _view_ids(views, size)
    pixels = image_dataset(
        samples, size=size, channels=channels, bands=bands, batch_size=batch_size, labels=False
    )
    if (folder / "cache.json").exists():
        stored = _stored_views(folder, len(view_ids))
    elif len(view_ids) == 1:
        stored = 1
        _write_manifest(folder, stored, 1)
    else:  # the first batch tells whether the views differ at all
        first = next(iter(pixels))
        sample = np.stack(
            [encoder.predict_on_batch(dihedral_batch(first, v)) for v in view_ids], axis=1
        )
        stored = 1 if _invariant(sample) else len(view_ids)
        _write_manifest(folder, stored, len(view_ids))
    per_view = [
        encoder.predict(
            pixels.map(lambda batch, v=v: dihedral_batch(batch, v)), verbose=1 if progress else 0
        )
        for v in view_ids[:stored]
    ]
    for row, path in zip(np.stack(per_view, axis=1), paths, strict=True):
        _save(path, row.astype("float32"))
    return stored


def _view_ids(views: int, size: tuple[int, int]) -> list[int]:
    if views == 1:
        return [0]
    return list(range(8)) if size[0] == size[1] else [0, 2, 4, 6]


def _invariant(stack: np.ndarray) -> bool:
    if stack.shape[1] == 1:
        return True
    scale = np.abs(stack).max() + 1e-12
    return bool(np.abs(stack - stack[:, :1]).max() <= 1e-4 * scale)


def _write_manifest(folder: Path, stored: int, views: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    note = "features are identical across views; one stored" if stored == 1 and views > 1 else ""
    _atomic_write(
        folder / "cache.json",
        json.dumps({"stored_views": stored, "views": views, "note": note}).encode(),
    )


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False)
    with handle:
        np.save(handle, array)
    os.replace(handle.name, path)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
