"""Cosine neighbours and outliers among embeddings, exactly (a few hundred thousand
vectors fit in memory and one matrix product per query batch)."""

from __future__ import annotations

import numpy as np

BATCH = 1024


def normalised(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, so a dot product is the cosine similarity."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def nearest(
    vectors: np.ndarray, query: np.ndarray, k: int, *, exclude: int | None = None
) -> list[tuple[int, float]]:
    """The ``k`` rows most similar to ``query`` as (row, cosine similarity), best first;
    ``exclude`` leaves out one row (the query's own)."""
    similarity = normalised(vectors) @ normalised(query[None])[0]
    if exclude is not None:
        similarity[exclude] = -np.inf
    k = min(k, len(similarity) - (exclude is not None))
    order = np.argsort(-similarity, kind="stable")[:k]
    return [(int(i), float(similarity[i])) for i in order]


def neighbour_rows(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every row's ``k`` nearest other rows and their similarities, shape (rows, k)."""
    unit = normalised(vectors)
    k = min(k, len(unit) - 1)
    rows, sims = [], []
    for start in range(0, len(unit), BATCH):
        block = unit[start : start + BATCH] @ unit.T
        block[np.arange(len(block)), np.arange(start, start + len(block))] = -np.inf
        top = np.argsort(-block, axis=1, kind="stable")[:, :k]
        rows.append(top)
        sims.append(np.take_along_axis(block, top, axis=1))
    return np.concatenate(rows), np.concatenate(sims)


def outliers(vectors: np.ndarray, n: int, k: int = 10) -> list[tuple[int, float]]:
    """The ``n`` rows furthest from their ``k`` nearest neighbours, as (row, mean cosine
    distance to them), furthest first."""
    _, sims = neighbour_rows(vectors, k)
    distance = 1.0 - sims.mean(axis=1)
    order = np.argsort(-distance, kind="stable")[:n]
    return [(int(i), float(distance[i])) for i in order]
