"""SavedModels as backbones: one signature's output becomes the feature tensor.

The SavedModel is wrapped in ``keras.layers.TFSMLayer`` with its variables trainable, so
the backbone can be fine-tuned and exported again like any other. A SavedModel written by
Keras 2 keeps its layer graph in ``keras_metadata.pb``; such a model can also be cut at
an intermediate layer (with the ``tf_keras`` package), and the cut is cached.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from zoo.errors import WeightsError, one_line
from zoo.fs import atomic_directory
from zoo.paths import zoo_home

DEFAULT_SIGNATURE = "serving_default"


def savedmodel_backbone(
    path: str,
    input_shape: tuple[int, int, int] | None,
    *,
    signature: str | None = None,
    output: str | None = None,
    feature_layer: str | None = None,
) -> Any:
    """A Keras model mapping images to the chosen signature output of the SavedModel."""
    if feature_layer is not None:
        path, signature, output = cut_keras2_savedmodel(path, feature_layer), None, None
    try:
        loaded = tf.saved_model.load(path)
    except Exception as exc:
        raise WeightsError(f"cannot load the SavedModel {path}: {one_line(exc)}") from exc
    signature = signature or DEFAULT_SIGNATURE
    if signature not in loaded.signatures:
        known = ", ".join(loaded.signatures) or "none"
        raise WeightsError(f"SavedModel {path} has no signature '{signature}' (it has: {known})")
    function = loaded.signatures[signature]
    inputs = function.structured_input_signature[1]
    if len(inputs) != 1:
        raise WeightsError(
            f"signature '{signature}' of {path} takes {len(inputs)} inputs ({', '.join(inputs)}); "
            "a backbone needs exactly one image input"
        )
    (input_spec,) = inputs.values()
    outputs = function.structured_outputs
    output = output or _only_output(path, signature, outputs)
    if output not in outputs:
        raise WeightsError(
            f"signature '{signature}' of {path} has no output '{output}' "
            f"(outputs: {', '.join(outputs)})"
        )
    shape = _input_shape(path, input_spec, input_shape)
    layer = keras.layers.TFSMLayer(path, call_endpoint=signature, trainable=True, name="savedmodel")
    images = keras.Input(shape=shape, name="images")
    return keras.Model(images, layer(images)[output], name="savedmodel_backbone")


def _only_output(path: str, signature: str, outputs: dict[str, Any]) -> str:
    if len(outputs) == 1:
        return next(iter(outputs))
    raise WeightsError(
        f"signature '{signature}' of {path} has several outputs ({', '.join(outputs)}); "
        "choose the features with output=NAME"
    )


def _input_shape(
    path: str, spec: tf.TensorSpec, requested: tuple[int, int, int] | None
) -> tuple[int, int, int]:
    declared = tuple(spec.shape[1:])
    if len(declared) != 3:
        raise WeightsError(
            f"the input of {path} has shape {spec.shape}; expected images (N, H, W, C)"
        )
    if requested is None:
        if None in declared:
            raise WeightsError(
                f"the input of {path} has open dimensions {spec.shape}; pass input_shape"
            )
        return declared  # type: ignore[return-value]
    if any(d is not None and d != r for d, r in zip(declared, requested, strict=True)):
        raise WeightsError(f"{path} takes images of shape {declared}, not {tuple(requested)}")
    return tuple(requested)  # type: ignore[return-value]


def cut_keras2_savedmodel(path: str, feature_layer: str) -> str:
    """A SavedModel of a Keras 2 model cut at ``feature_layer``, cached under $ZOO_HOME."""
    if not (Path(path) / "keras_metadata.pb").exists():
        raise WeightsError(
            f"SavedModel {path} carries no Keras metadata (keras_metadata.pb), so it cannot be "
            "cut at a layer; choose one of its signature outputs with output=NAME instead"
        )
    stamp = os.stat(Path(path) / "saved_model.pb").st_mtime_ns
    key = hashlib.sha256(f"{Path(path).resolve()}|{stamp}|{feature_layer}".encode()).hexdigest()[
        :16
    ]
    cached = zoo_home() / "sources" / f"{Path(path).name}-{feature_layer}-{key}"
    if (cached / "saved_model.pb").exists():
        return str(cached)
    try:
        import tf_keras
    except ImportError:
        raise WeightsError(
            f"SavedModel {path} was written by Keras 2; cutting it at a layer needs the "
            "tf_keras package (pip install tf_keras), or choose a signature output instead"
        ) from None
    model = tf_keras.models.load_model(path, compile=False)
    try:
        features = model.get_layer(feature_layer).output
    except ValueError:
        names = ", ".join(layer.name for layer in model.layers[-6:])
        raise WeightsError(
            f"SavedModel {path} has no layer named '{feature_layer}'; its last layers are {names}"
        ) from None
    with atomic_directory(cached, replace=True) as staging:  # a concurrent cut is the same
        tf_keras.Model(model.inputs, features).save(str(staging))
    return str(cached)
