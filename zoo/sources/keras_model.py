"""Full Keras models (``.keras``, legacy ``.h5``) as backbones, cut at a named layer."""

from __future__ import annotations

from typing import Any

import keras

from zoo.errors import WeightsError, one_line


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
        raise WeightsError(f"cannot load the Keras model {path}: {one_line(exc)}{hint}") from exc
    return cut_at(model, feature_layer, source=path)


def cut_at(model: Any, feature_layer: str | None, *, source: str) -> Any:
    """The model up to the named layer (or whole); zoo.build pools a 4-D output."""
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
    if features is model.outputs[0]:
        return model
    return keras.Model(model.inputs, features, name=f"{model.name}_features")
