"""``zoo.json``: what an exported version is and where it came from, readable without TensorFlow.

It sits in the version folder beside ``saved_model.pb`` (TF Serving ignores it) and
records the backbone and its weights (with their sha256), the data split's hashes, the
run's metrics, the library versions, the input size and bands, the labels, and each
signature's inputs and outputs, so ``zoo serve`` and ``zoo predict`` can describe and
feed a model without loading it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.errors import ExportError
from zoo.fs import read_json, write_json

MANIFEST = "zoo.json"
FORMAT = 1
LABELS_ASSET = "labels.txt"
WARMUP = "assets.extra/tf_serving_warmup_requests"
#: The tf.Example feature that holds an image's encoded bytes in a Classify request.
IMAGE_FEATURE = "image/encoded"


def write_manifest(version: Path, manifest: dict[str, Any]) -> Path:
    return write_json(version / MANIFEST, {"format": FORMAT, **manifest})


def read_manifest(version: str | Path) -> dict[str, Any]:
    """The manifest of an exported version; a clear error when there is none."""
    path = Path(version).expanduser() / MANIFEST
    if not path.is_file():
        raise ExportError(
            f"{path.parent} is not a version exported by zoo (no {MANIFEST}); export one with "
            "`zoo export RUN --base BASE --name NAME`"
        )
    manifest = read_json(path)
    if manifest.get("format") != FORMAT:
        raise ExportError(
            f"{path} has manifest format {manifest.get('format')!r}; this zoo reads format "
            f"{FORMAT}: export the run again"
        )
    return manifest


def check_name(name: str) -> None:
    """A model name is a plain folder name that TF Serving cannot take for a version."""
    if not name or name in (".", "..") or Path(name).name != name or "\\" in name or name.isdigit():
        raise ExportError(
            f"model name {name!r} must be a plain folder name (no '/', '..', and not a number, "
            "which TF Serving would take for a version)"
        )
