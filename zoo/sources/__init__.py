"""Self-describing models as backbones: SavedModels, .keras / .h5 files, TF1 meta graphs.

``build_from_source`` is the builder that registry.yaml ``source:`` entries and
``zoo.create_backbone(path)`` use; it picks the loader from what the path holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.errors import WeightsError


def source_kind(path: str | Path) -> str | None:
    """'savedmodel', 'keras', 'h5' or 'meta' for a model file or folder, else None."""
    p = Path(path).expanduser()
    if p.is_dir() and ((p / "saved_model.pb").exists() or (p / "saved_model.pbtxt").exists()):
        return "savedmodel"
    if p.suffix == ".keras" and p.is_file():
        return "keras"
    if p.suffix in (".h5", ".hdf5") and p.is_file() and not p.name.endswith(".weights.h5"):
        return "h5"
    if p.suffix == ".meta" and p.is_file():
        return "meta"
    return None


def build_from_source(
    input_shape: tuple[int, int, int] | None,
    source: str,
    *,
    feature_layer: str | None = None,
    signature: str | None = None,
    output: str | None = None,
    input_tensor: str | None = None,
    feature_tensor: str | None = None,
    safe_mode: bool = True,
) -> Any:
    """A Keras feature extractor from the self-describing model at ``source``."""
    kind = source_kind(source)
    path = str(Path(source).expanduser())
    if kind == "savedmodel":
        from zoo.sources.savedmodel import savedmodel_backbone

        return savedmodel_backbone(
            path, input_shape, signature=signature, output=output, feature_layer=feature_layer
        )
    if kind in ("keras", "h5"):
        from zoo.sources.keras_model import keras_model_backbone

        return keras_model_backbone(path, feature_layer=feature_layer, safe_mode=safe_mode)
    if kind == "meta":
        from zoo.sources.meta_graph import meta_graph_backbone

        return meta_graph_backbone(
            path, input_shape, input_tensor=input_tensor, feature_tensor=feature_tensor
        )
    if not Path(path).exists():
        raise WeightsError(f"model source {path} does not exist")
    raise WeightsError(
        f"{path} is not a model zoo can load by itself: expected a SavedModel folder, a .keras "
        "file, a full-model .h5 file or a TF1 .meta graph (weights files go with a named "
        "architecture: create_backbone('resnet50', weights=...))"
    )
