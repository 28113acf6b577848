"""ResNet v1 (50, 101, 152) and ResNet v2 (50) from keras.applications."""

from __future__ import annotations

from typing import Any

from zoo.plugins.keras_applications import application
from zoo.registry_file import builtin_hook


def resnet50(input_shape: tuple[int, int, int]) -> Any:
    return application(input_shape, "ResNet50")


def resnet101(input_shape: tuple[int, int, int]) -> Any:
    return application(input_shape, "ResNet101")


def resnet152(input_shape: tuple[int, int, int]) -> Any:
    return application(input_shape, "ResNet152")


def resnet50_v2(input_shape: tuple[int, int, int]) -> Any:
    return application(input_shape, "ResNet50V2")


register_backbones = builtin_hook(__name__)
