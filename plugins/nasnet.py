"""NASNet-A Mobile and Large from keras.applications."""

from __future__ import annotations

from typing import Any

from zoo.plugins.keras_applications import application
from zoo.registry_file import builtin_hook


def nasnet_mobile(input_shape: tuple[int, int, int]) -> Any:
    return application(input_shape, "NASNetMobile")


def nasnet_large(input_shape: tuple[int, int, int]) -> Any:
    return application(input_shape, "NASNetLarge")


register_backbones = builtin_hook(__name__)
