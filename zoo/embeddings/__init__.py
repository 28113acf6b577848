"""Embeddings: every image's representation, for similarity search and outlier finding.

``embed`` runs a finished run's fine-tuned backbone, or a backbone with its (default)
weights, over a folder or catalog of images and writes each image's features with its
path; features come from the same on-disk cache as the head's. ``nearest`` and
``outliers`` search them by cosine similarity.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from zoo.embeddings.search import nearest, outliers
from zoo.embeddings.store import Embeddings, check_output, read_embeddings, write_embeddings

__all__ = [
    "Embeddings",
    "embed",
    "embed_images",
    "nearest",
    "outliers",
    "read_embeddings",
    "write_embeddings",
]


def embed(
    source: str,
    data: str | Path,
    out: str | Path,
    *,
    weights: str | None = None,
    image_size: Sequence[int] | None = None,
    bands: Sequence[str | int] | None = None,
    batch_size: int = 32,
    registry_files: Sequence[str] = (),
    progress: bool = False,
) -> tuple[Embeddings, dict[str, int]]:
    """Embed every usable image under ``data`` with ``source`` (a run folder or a backbone)
    and write them to ``out``; returns them and counts (images, cached, computed, skipped)."""
    from zoo.data.dataset import scan_images
    from zoo.embeddings.encoder import encoder_for, is_run
    from zoo.train.feature_cache import cached_features, features_key, weights_digest

    out = check_output(out)
    run_encoder = encoder_for(source, channels=0) if is_run(source) else None
    images = scan_images(
        data,
        bands=bands,
        channels=run_encoder.geometry.channels if run_encoder else None,
        progress=progress,
    )
    encoder = run_encoder or encoder_for(
        source,
        channels=images.channels,
        weights=weights,
        image_size=image_size,
        bands=bands,
        registry_files=registry_files,
        progress=progress,
    )
    digest = weights_digest(encoder.model)
    key = features_key(digest, encoder.scheme, encoder.geometry, 1)
    features, stats = cached_features(
        encoder.model,
        images.samples,
        key=key,
        geometry=encoder.geometry,
        views=1,
        batch_size=batch_size,
        progress=progress,
    )
    recipe = {
        **encoder.source,
        "input_shape": [*encoder.geometry.size, encoder.geometry.channels],
        "bands": [str(b) for b in encoder.geometry.bands or ()],
        "data": str(Path(data).expanduser().resolve()),
        "features": int(features.shape[-1]),
        "weights_digest": digest,
        "registry_files": [str(Path(f).expanduser().resolve()) for f in registry_files],
        "skipped": [{"file": f, "reason": r} for f, r in images.skipped],
    }
    embeddings = Embeddings(
        [str(Path(s.path).resolve()) for s in images.samples],
        [images.labels[s.label] for s in images.samples],
        features[:, 0],
        recipe,
    )
    write_embeddings(out, embeddings)
    counts = {
        "images": len(images.samples),
        "cached": stats.reused,
        "computed": stats.computed,
        "skipped": len(images.skipped),
    }
    return embeddings, counts


def embed_images(recipe: dict, paths: Sequence[str | Path]) -> np.ndarray:
    """Features of new image files, made the way an embeddings file's ``recipe`` says."""
    from zoo.data.dataset import Sample
    from zoo.data.images import read_image
    from zoo.data.pipeline import image_dataset
    from zoo.embeddings.encoder import encoder_for

    *size, channels = recipe["input_shape"]
    source = recipe.get("run") or recipe["backbone"]
    encoder = encoder_for(
        source,
        channels=channels,
        weights=recipe.get("weights") or "none",
        image_size=size,
        bands=recipe.get("bands") or None,
        registry_files=recipe.get("registry_files", ()),
    )
    for path in paths:
        read_image(path, encoder.geometry.bands)  # a clear error for a file that cannot be read
    samples = [Sample(str(p), str(p), 0, "test", "") for p in paths]
    batches = image_dataset(samples, encoder.geometry, labels=False)
    return np.asarray(encoder.model.predict(batches, verbose=0), "float32")
