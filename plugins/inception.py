"""Inception v3 and Inception-ResNet v2 from keras.applications; Inception v4 (next)."""

from __future__ import annotations

from typing import Any

from zoo import hookimpl
from zoo.catalog import builtin_specs
from zoo.plugins.keras_applications import application


def inception_v3(input_shape: tuple[int, int, int]) -> Any:
    return application(input_shape, "InceptionV3")


def inception_resnet_v2(input_shape: tuple[int, int, int]) -> Any:
    return application(input_shape, "InceptionResNetV2")


@hookimpl
def register_backbones(register):
    for spec in builtin_specs(__name__):
        register(spec)
