"""Embedding files: every image's path, label and feature vector, and how they were made.

Parquet (one row per image: path, label, embedding; the recipe in the schema's metadata)
where pyarrow is installed, which pandas, polars and DuckDB read directly. Otherwise, or
when the name ends in ``.npy``: the vectors in ``NAME.npy``, the rows in ``NAME.csv``
and the recipe in ``NAME.json``. Every file is written whole or not at all.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ConfigError, DataError
from zoo.fs import atomic_file, read_json, write_json, write_text

SUFFIXES = (".parquet", ".npy")
META_KEY = b"zoo.embeddings"


@dataclass
class Embeddings:
    """One vector per image, in the order of ``paths``."""

    paths: list[str]
    labels: list[str]
    vectors: np.ndarray
    recipe: dict[str, Any]

    def row_of(self, image: str) -> int | None:
        """The row of an image given by its path as stored, its absolute path, or a
        unique path suffix (``merger/merger_00003.png``)."""
        wanted = str(Path(image).expanduser().resolve()) if Path(image).exists() else image
        if wanted in self.paths:
            return self.paths.index(wanted)
        tail = "/" + image.lstrip("./")
        matches = [i for i, path in enumerate(self.paths) if path.endswith(tail)]
        return matches[0] if len(matches) == 1 else None


def parquet_available() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def default_suffix() -> str:
    return ".parquet" if parquet_available() else ".npy"


def check_output(path: str | Path) -> Path:
    """The output path, refused before any work if its format cannot be written."""
    out = Path(path).expanduser()
    if out.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"--out {out}: name it .parquet or .npy (vectors, with .csv and .json)")
    if out.suffix.lower() == ".parquet" and not parquet_available():
        raise ConfigError(
            f"--out {out}: writing Parquet needs pyarrow (pip install pyarrow); or name it .npy"
        )
    return out


def write_embeddings(path: str | Path, embeddings: Embeddings) -> Path:
    out = check_output(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        vectors = embeddings.vectors.astype("float32")
        column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1])
        table = pa.table(
            {"path": embeddings.paths, "label": embeddings.labels, "embedding": column},
            metadata={META_KEY: json.dumps(embeddings.recipe).encode()},
        )
        with atomic_file(out) as partial:
            pq.write_table(table, partial)
        return out
    with atomic_file(out) as partial, open(partial, "wb") as handle:
        np.save(handle, embeddings.vectors.astype("float32"))
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    writer.writerow(["row", "path", "label"])
    pairs = zip(embeddings.paths, embeddings.labels, strict=True)
    writer.writerows((row, path, label) for row, (path, label) in enumerate(pairs))
    write_text(out.with_suffix(".csv"), rows.getvalue())
    write_json(out.with_suffix(".json"), embeddings.recipe)
    return out


def read_embeddings(path: str | Path) -> Embeddings:
    source = Path(path).expanduser()
    if source.suffix.lower() not in SUFFIXES or not source.is_file():
        raise DataError(f"{source}: not an embeddings file (.parquet, or .npy with .csv and .json)")
    if source.suffix.lower() == ".parquet":
        if not parquet_available():
            raise ConfigError(f"{source}: reading Parquet needs pyarrow (pip install pyarrow)")
        import pyarrow.parquet as pq

        table = pq.read_table(source)
        recipe = json.loads((table.schema.metadata or {}).get(META_KEY, b"{}"))
        vectors = np.asarray(table.column("embedding").combine_chunks().flatten(), "float32")
        return Embeddings(
            table.column("path").to_pylist(),
            table.column("label").to_pylist(),
            vectors.reshape(table.num_rows, -1),
            recipe,
        )
    for sidecar in (".csv", ".json"):
        if not source.with_suffix(sidecar).is_file():
            raise DataError(f"{source}: {source.with_suffix(sidecar).name} is missing beside it")
    with open(source.with_suffix(".csv"), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    vectors = np.load(source)
    if len(rows) != len(vectors):
        raise DataError(f"{source}: {len(vectors)} vectors but {len(rows)} rows in its .csv")
    return Embeddings(
        [row["path"] for row in rows],
        [row["label"] for row in rows],
        vectors,
        read_json(source.with_suffix(".json")),
    )
