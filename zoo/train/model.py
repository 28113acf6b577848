"""The network: raw images -> preprocessing -> backbone -> head (the task's outputs).

The head is its own small model so it can train alone on cached features and then be
reused, weights and all, inside the full classifier. A pretrained backbone keeps its
batch-norm layers frozen, in inference mode on their moving statistics, while a small data
set fine-tunes the blocks around them (the Keras transfer-learning recipe). A backbone
trained from scratch needs its batch statistics, so it runs in training mode while it
trains.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import keras

from zoo.data.images import ImageGeometry
from zoo.errors import SpecError
from zoo.preprocessing import Preprocessing
from zoo.spec import BackboneSpec
from zoo.tasks import Task


@dataclass
class Network:
    """The classifier being fine-tuned, its parts, and what the recipe needs to know of them.

    ``pretrained`` is True when the backbone's weights were trained before (weights were
    loaded, or it came from a model file); the recipe then starts with a frozen backbone.
    """

    backbone: keras.Model
    head: keras.Model
    classifier: keras.Model
    spec: BackboneSpec
    geometry: ImageGeometry
    pretrained: bool
    task: Task


def build_network(
    backbone: keras.Model,
    task: Task,
    *,
    bands: Sequence[str] | None,
    hidden: Sequence[int] = (),
    dropout: float = 0.2,
    weights_given: bool = False,
) -> Network:
    """A new head for ``task`` on ``backbone`` (made by zoo.create_backbone), and the
    whole network (named ``classifier`` whatever the task)."""
    spec: BackboneSpec = backbone.backbone_spec
    pretrained = weights_given or backbone.load_report is not None or spec.carries_weights
    height, width, channels = (int(d) for d in backbone.inputs[0].shape[1:])
    geometry = ImageGeometry((height, width), channels, tuple(bands) if bands else None)
    head = build_head(int(backbone.outputs[0].shape[-1]), task, hidden=hidden, dropout=dropout)
    classifier = build_classifier(backbone, head, spec.preprocessing, pretrained=pretrained)
    return Network(backbone, head, classifier, spec, geometry, pretrained, task)


def build_head(
    feature_dim: int, task: Task, *, hidden: Sequence[int] = (), dropout: float = 0.2
) -> keras.Model:
    """Features -> dropout -> optional hidden ReLU layers -> the task's outputs."""
    features = keras.Input(shape=(feature_dim,), name="features")
    x = keras.layers.Dropout(dropout, name="head_dropout")(features) if dropout else features
    for index, units in enumerate(hidden, start=1):
        x = keras.layers.Dense(units, activation="relu", name=f"head_hidden{index}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"head_dropout{index}")(x)
    return keras.Model(features, task.output_layer(x), name="head")


def build_classifier(
    backbone: keras.Model, head: keras.Model, scheme: str, *, pretrained: bool = True
) -> keras.Model:
    """The whole model on raw pixels: what is fine-tuned, evaluated and exported."""
    images = keras.Input(shape=tuple(backbone.inputs[0].shape[1:]), name="images")
    x = Preprocessing(scheme, name="preprocessing")(images)
    features = backbone(x, training=False) if pretrained else backbone(x)
    return keras.Model(images, head(features), name="classifier")


def build_encoder(backbone: keras.Model, scheme: str) -> keras.Model:
    """Raw images to features in inference mode: what the feature cache runs."""
    images = keras.Input(shape=tuple(backbone.inputs[0].shape[1:]), name="images")
    features = backbone(Preprocessing(scheme, name="preprocessing")(images), training=False)
    return keras.Model(images, features, name="encoder")


def classifier_parts(classifier: keras.Model) -> tuple[keras.Model, keras.Model]:
    """A classifier's encoder (raw pixels to the features its head reads, in inference
    mode, sharing the classifier's weights) and its head: embeddings and the exported
    ``features`` output come from the first."""
    layers = classifier.layers  # images, preprocessing, backbone, head: a chain
    head = classifier.get_layer("head")
    pixels = keras.Input(shape=tuple(classifier.inputs[0].shape[1:]), name="pixels")
    features = pixels
    for layer in layers[1 : layers.index(head)]:
        features = layer(features, training=False)
    return keras.Model(pixels, features, name="encoder"), head


def block_boundaries(backbone: keras.Model, patterns: Sequence[str]) -> list[int]:
    """Indices in ``backbone.layers`` of the layers where the spec's blocks end."""
    compiled = [re.compile(p) for p in patterns]
    return [
        i
        for i, layer in enumerate(backbone.layers)
        if any(p.fullmatch(layer.name) for p in compiled)
    ]


def set_trainable_top(
    backbone: keras.Model,
    patterns: Sequence[str],
    blocks: int | None,
    *,
    keep_batch_norm: bool = False,
) -> int:
    """Freeze the backbone except its top ``blocks`` blocks (None: all); returns blocks unfrozen.

    The top N blocks are every layer after the Nth block boundary from the end. With
    ``keep_batch_norm`` (a pretrained backbone), every batch-norm layer stays frozen, so it
    runs in inference mode on its moving statistics while the blocks around it train: a
    small data set's batch statistics would otherwise replace the ones the backbone was
    trained with, and the first epoch undoes what the head learned (Keras's
    transfer-learning guide; Keras 3 does not carry ``backbone(x, training=False)`` into
    the layers of a nested model when the classifier trains).
    """
    if blocks is None:
        backbone.trainable = True
        _freeze_batch_norm(backbone, keep_batch_norm)
        return len(block_boundaries(backbone, patterns)) or 1
    boundaries = block_boundaries(backbone, patterns)
    if not boundaries:
        raise SpecError(
            f"backbone '{backbone.name}' declares no blocks, so its top blocks cannot be "
            "unfrozen alone; use --strategy head or full"
        )
    backbone.trainable = True
    first = 0 if blocks >= len(boundaries) else boundaries[-blocks - 1] + 1
    for index, layer in enumerate(backbone.layers):
        layer.trainable = index >= first
    _freeze_batch_norm(backbone, keep_batch_norm)
    return min(blocks, len(boundaries))


def _freeze_batch_norm(model: keras.Model, freeze: bool) -> None:
    if not freeze:
        return
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


def activation_bytes(model: keras.Model, batch_size: int) -> int:
    """The bytes of every layer's output for one batch: what a training step keeps in memory.

    A lower bound (gradients and workspace come on top), used to refuse an input size
    that cannot fit before any time is spent on it.
    """
    elements = 0
    for layer in _all_layers(model):
        for output in _outputs(layer):
            shape = tuple(output.shape[1:])
            if None not in shape:
                elements += math.prod(int(d) for d in shape)
    return elements * batch_size * 4


def _all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    layers = []
    for layer in model.layers:
        layers.extend(_all_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return layers


def _outputs(layer: keras.layers.Layer) -> list:
    try:
        output = layer.output
    except (AttributeError, ValueError):  # a layer used more than once, or never built
        return []
    return list(output) if isinstance(output, (list, tuple)) else [output]
