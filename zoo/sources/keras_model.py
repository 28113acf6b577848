"""Full Keras models (``.keras``, legacy ``.h5``) as backbones, cut at a named layer."""

from __future__ import annotations

from typing import Any

import keras

from zoo.errors import WeightsError


def keras_model_backbone(path: str, *, feature_layer: str | None, safe_mode: bool = True) -> Any:
    """Load the model at ``path`` and return it cut at ``feature_layer`` with pooled features.

    ``.keras`` files load with ``safe_mode=True`` (no arbitrary code from lambdas) unless
    the caller opts out.
    """
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=safe_mode)
    except Exception as exc:
        hint = (
            " (it contains code such as a Lambda layer; pass safe_mode=False only if you trust it)"
            if "safe_mode" in str(exc)
            else ""
        )
        raise WeightsError(f"cannot load the Keras model {path}: {_one_line(exc)}{hint}") from exc
    return cut_at(model, feature_layer, source=path)


def cut_at(model: Any, feature_layer: str | None, *, source: str) -> Any:
    """The model's features: the named layer's output (or the model's), pooled to 2-D."""
    if feature_layer is None:
        features = model.outputs[0] if len(model.outputs) == 1 else None
        if features is None:
            raise WeightsError(
                f"{source} has {len(model.outputs)} outputs; name the features with feature_layer"
            )
    else:
        try:
            features = model.get_layer(feature_layer).output
        except ValueError:
            names = [layer.name for layer in model.layers]
            raise WeightsError(
                f"{source} has no layer named '{feature_layer}'; its last layers are "
                f"{', '.join(names[-6:])}"
            ) from None
    rank = len(features.shape)
    if rank == 4:
        features = keras.layers.GlobalAveragePooling2D(name="feature_pool")(features)
    elif rank != 2:
        raise WeightsError(
            f"the features of {source} at '{feature_layer or 'its output'}' have rank {rank}; "
            "choose a layer with a 2-D (batch, features) or 4-D (batch, h, w, c) output"
        )
    if features is model.outputs[0] and rank == 2:
        return model
    return keras.Model(model.inputs, features, name=f"{model.name}_features")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
