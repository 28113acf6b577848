"""Any ``keras.applications`` network as a backbone, named by a registry.yaml entry.

An entry such as ``build: zoo.plugins.keras_applications:application`` with
``options: {application: EfficientNetB0}`` makes EfficientNetB0 available by name.
"""

from __future__ import annotations

from typing import Any

from zoo.errors import SpecError
from zoo.registry_file import builtin_hook


def application(input_shape: tuple[int, int, int], application: str, **kwargs: Any) -> Any:
    """Build ``keras.applications.<application>`` headless, with average-pooled features.

    Weights are loaded afterwards by zoo, so the network is built with ``weights=None``.
    """
    import keras

    constructor = getattr(keras.applications, application, None)
    if constructor is None or not callable(constructor):
        raise SpecError(
            f"keras.applications has no model named {application!r} in Keras {keras.__version__}"
        )
    return constructor(
        include_top=False,
        weights=None,
        input_shape=tuple(input_shape),
        pooling="avg",
        **kwargs,
    )


register_backbones = builtin_hook(__name__)
