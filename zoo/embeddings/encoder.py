"""What turns images into embeddings: a finished run's fine-tuned backbone, or a backbone.

An embedding is the pooled representation the head reads (the ``features`` of an
export), computed in inference mode on the raw pixels, as the model sees them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from zoo.data.images import Band, ImageGeometry
from zoo.preprocessing import Preprocessing
from zoo.train.model import build_encoder, classifier_parts


@dataclass(frozen=True)
class Encoder:
    """Raw images to features, how it reads files, and where it came from."""

    model: keras.Model
    geometry: ImageGeometry
    source: dict[str, Any]

    @property
    def scheme(self) -> str:
        """The preprocessing inside the model, for the feature cache's key."""
        layer = next(x for x in self.model.layers if isinstance(x, Preprocessing))
        return f"{layer.scheme}:{layer.softening}"


def is_run(path: str | Path) -> bool:
    """Whether ``path`` is a finished fine-tuning run folder."""
    folder = Path(path).expanduser()
    return (folder / "summary.json").is_file() and (folder / "model.keras").is_file()


def encoder_for(
    source: str,
    *,
    channels: int,
    weights: str | None = None,
    image_size: Sequence[int] | None = None,
    bands: Sequence[Band] | None = None,
    registry_files: Sequence[str] = (),
    progress: bool = False,
) -> Encoder:
    """The encoder of a run folder, or of a backbone with ``weights`` (its default weights
    for ``channels`` channels when None; "none" for random ones)."""
    if is_run(source):
        return _run_encoder(Path(source).expanduser())
    from zoo.build import create_backbone
    from zoo.plugin_loader import get_registry
    from zoo.sources import source_kind

    registry = get_registry(tuple(registry_files))
    spec = None if source_kind(source) else registry.get(source)
    if weights == "none":
        weights = None
    elif weights is None and spec is not None:
        weights = spec.default_weight(channels)
    shape = None
    if image_size:
        size = tuple(image_size) * (2 if len(image_size) == 1 else 1)
        shape = (*size[:2], channels)
    elif spec is not None:
        shape = (*spec.input_shape[:2], channels)
    backbone = create_backbone(
        source, weights=weights, input_shape=shape, registry=registry, progress=progress
    )
    height, width, depth = (int(d) for d in backbone.inputs[0].shape[1:])
    geometry = ImageGeometry((height, width), depth, tuple(bands) if bands else None)
    model = build_encoder(backbone, backbone.backbone_spec.preprocessing)
    return Encoder(model, geometry, {"backbone": str(source), "weights": weights})


def _run_encoder(folder: Path) -> Encoder:
    """The run's whole model up to the head's input: its fine-tuned backbone."""
    from zoo.train.rundir import load_run

    run = load_run(folder)
    encoder, _ = classifier_parts(run.model)
    return Encoder(encoder, run.geometry, {"run": str(folder.resolve())})
