"""NASNet-A Mobile and Large from keras.applications."""

from __future__ import annotations

from typing import Any

from zoo import hookimpl
from zoo.plugins.keras_applications import application
from zoo.registry_file import builtin_specs


def nasnet_mobile(input_shape: tuple[int, int, int]) -> Any:
    return application(input_shape, "NASNetMobile")


def nasnet_large(input_shape: tuple[int, int, int]) -> Any:
    return application(input_shape, "NASNetLarge")


@hookimpl
def register_backbones(register):
    for spec in builtin_specs(__name__):
        register(spec)
