"""Inception v3 and Inception-ResNet v2 from keras.applications; Inception v4 in Keras.

Inception v4 follows TF-Slim's ``research/slim/nets/inception_v4.py`` layer for layer.
Each slim scope ``InceptionV4/<path>`` becomes a layer named ``<path>`` with ``/``
replaced by ``.``, so slim's checkpoint maps onto the model's variable paths through the
registry's ``checkpoint_rename`` rules. Keras is imported inside the builders: listing
backbones must not load TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zoo.errors import SpecError
from zoo.plugins.keras_applications import application
from zoo.registry_file import builtin_hook

if TYPE_CHECKING:
    import keras

#: The smallest height and width for which every VALID convolution and pool of the stem
#: and the reduction blocks still leaves at least one pixel (Mixed_7a ends at 1x1).
INCEPTION_V4_MIN_SIZE = 75


def inception_v3(input_shape: tuple[int, int, int]) -> Any:
    return application(input_shape, "InceptionV3")


def inception_resnet_v2(input_shape: tuple[int, int, int]) -> Any:
    return application(input_shape, "InceptionResNetV2")


def inception_v4(input_shape: tuple[int, int, int]) -> keras.Model:
    """Inception v4 features (batch, 1536) with TF-Slim's scopes as layer names.

    Inputs are images already scaled to -1..1. The network ends at slim's ``AvgPool_1a``
    global average pool: no dropout, logits or auxiliary head, which a feature extractor
    does not need and whose 1001-class weights zoo skips when loading the checkpoint.
    """
    import keras

    height, width, _ = input_shape
    if min(height, width) < INCEPTION_V4_MIN_SIZE:
        raise SpecError(
            f"inception_v4 needs inputs of at least {INCEPTION_V4_MIN_SIZE}x"
            f"{INCEPTION_V4_MIN_SIZE} pixels, got {height}x{width}"
        )
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    x = _stem(inputs)
    for block in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_5e"):
        x = _inception_a(x, block)
    x = _reduction_a(x, "Mixed_6a")
    for block in (
        "Mixed_6b",
        "Mixed_6c",
        "Mixed_6d",
        "Mixed_6e",
        "Mixed_6f",
        "Mixed_6g",
        "Mixed_6h",
    ):
        x = _inception_b(x, block)
    x = _reduction_b(x, "Mixed_7a")
    for block in ("Mixed_7b", "Mixed_7c", "Mixed_7d"):
        x = _inception_c(x, block)
    features = keras.layers.GlobalAveragePooling2D(name="AvgPool_1a")(x)
    return keras.Model(inputs, features, name="inception_v4")


def _conv(
    x: Any,
    filters: int,
    kernel_size: tuple[int, int],
    name: str,
    strides: int = 1,
    padding: str = "same",
) -> Any:
    """Slim's ``conv2d`` under ``inception_arg_scope``: conv, batch norm, ReLU.

    The convolution has no bias because batch norm follows it, and the batch norm has no
    scale (slim's default, ``scale=False``), so the layers own exactly the variables that
    slim's checkpoint holds. The initializer is slim's ``variance_scaling_initializer()``
    (He, truncated normal), which matters only when training from scratch.
    """
    import keras

    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer=keras.initializers.VarianceScaling(
            scale=2.0, mode="fan_in", distribution="truncated_normal"
        ),
        name=name,
    )(x)
    x = keras.layers.BatchNormalization(
        scale=False, epsilon=0.001, momentum=0.9997, name=f"{name}.BatchNorm"
    )(x)
    return keras.layers.Activation("relu", name=f"{name}.Relu")(x)


def _max_pool(x: Any, name: str) -> Any:
    """Slim's 3x3, stride 2, VALID max pool: every max pool in Inception v4 is one."""
    import keras

    return keras.layers.MaxPooling2D(3, strides=2, padding="valid", name=name)(x)


def _avg_pool(x: Any, name: str) -> Any:
    """Slim's 3x3, stride 1, SAME average pool of the Inception-A/B/C fourth branches.

    Keras's "same" average pooling, like TensorFlow's, leaves the padding out of the
    mean, as slim's did.
    """
    import keras

    return keras.layers.AveragePooling2D(3, strides=1, padding="same", name=name)(x)


def _concat(branches: list[Any], name: str) -> Any:
    """Channel concatenation in slim's branch order, which fixes the channel layout."""
    import keras

    return keras.layers.Concatenate(axis=-1, name=name)(branches)


def _stem(x: Any) -> Any:
    """Conv2d_1a_3x3 to Mixed_5a: 299x299 down to 35x35x384, VALID where slim says so."""
    x = _conv(x, 32, (3, 3), "Conv2d_1a_3x3", strides=2, padding="valid")
    x = _conv(x, 32, (3, 3), "Conv2d_2a_3x3", padding="valid")
    x = _conv(x, 64, (3, 3), "Conv2d_2b_3x3")

    branch_0 = _max_pool(x, "Mixed_3a.Branch_0.MaxPool_0a_3x3")
    branch_1 = _conv(x, 96, (3, 3), "Mixed_3a.Branch_1.Conv2d_0a_3x3", strides=2, padding="valid")
    x = _concat([branch_0, branch_1], "Mixed_3a")

    branch_0 = _conv(x, 64, (1, 1), "Mixed_4a.Branch_0.Conv2d_0a_1x1")
    branch_0 = _conv(branch_0, 96, (3, 3), "Mixed_4a.Branch_0.Conv2d_1a_3x3", padding="valid")
    branch_1 = _conv(x, 64, (1, 1), "Mixed_4a.Branch_1.Conv2d_0a_1x1")
    branch_1 = _conv(branch_1, 64, (1, 7), "Mixed_4a.Branch_1.Conv2d_0b_1x7")
    branch_1 = _conv(branch_1, 64, (7, 1), "Mixed_4a.Branch_1.Conv2d_0c_7x1")
    branch_1 = _conv(branch_1, 96, (3, 3), "Mixed_4a.Branch_1.Conv2d_1a_3x3", padding="valid")
    x = _concat([branch_0, branch_1], "Mixed_4a")

    branch_0 = _conv(x, 192, (3, 3), "Mixed_5a.Branch_0.Conv2d_1a_3x3", strides=2, padding="valid")
    branch_1 = _max_pool(x, "Mixed_5a.Branch_1.MaxPool_1a_3x3")
    return _concat([branch_0, branch_1], "Mixed_5a")


def _inception_a(x: Any, block: str) -> Any:
    """Slim's ``block_inception_a``: 35x35x384 in and out."""
    branch_0 = _conv(x, 96, (1, 1), f"{block}.Branch_0.Conv2d_0a_1x1")
    branch_1 = _conv(x, 64, (1, 1), f"{block}.Branch_1.Conv2d_0a_1x1")
    branch_1 = _conv(branch_1, 96, (3, 3), f"{block}.Branch_1.Conv2d_0b_3x3")
    branch_2 = _conv(x, 64, (1, 1), f"{block}.Branch_2.Conv2d_0a_1x1")
    branch_2 = _conv(branch_2, 96, (3, 3), f"{block}.Branch_2.Conv2d_0b_3x3")
    branch_2 = _conv(branch_2, 96, (3, 3), f"{block}.Branch_2.Conv2d_0c_3x3")
    branch_3 = _avg_pool(x, f"{block}.Branch_3.AvgPool_0a_3x3")
    branch_3 = _conv(branch_3, 96, (1, 1), f"{block}.Branch_3.Conv2d_0b_1x1")
    return _concat([branch_0, branch_1, branch_2, branch_3], block)


def _reduction_a(x: Any, block: str) -> Any:
    """Slim's ``block_reduction_a``: 35x35x384 to 17x17x1024."""
    branch_0 = _conv(x, 384, (3, 3), f"{block}.Branch_0.Conv2d_1a_3x3", strides=2, padding="valid")
    branch_1 = _conv(x, 192, (1, 1), f"{block}.Branch_1.Conv2d_0a_1x1")
    branch_1 = _conv(branch_1, 224, (3, 3), f"{block}.Branch_1.Conv2d_0b_3x3")
    branch_1 = _conv(
        branch_1, 256, (3, 3), f"{block}.Branch_1.Conv2d_1a_3x3", strides=2, padding="valid"
    )
    branch_2 = _max_pool(x, f"{block}.Branch_2.MaxPool_1a_3x3")
    return _concat([branch_0, branch_1, branch_2], block)


def _inception_b(x: Any, block: str) -> Any:
    """Slim's ``block_inception_b``: 17x17x1024 in and out, factorised 7x7 convs."""
    branch_0 = _conv(x, 384, (1, 1), f"{block}.Branch_0.Conv2d_0a_1x1")
    branch_1 = _conv(x, 192, (1, 1), f"{block}.Branch_1.Conv2d_0a_1x1")
    branch_1 = _conv(branch_1, 224, (1, 7), f"{block}.Branch_1.Conv2d_0b_1x7")
    branch_1 = _conv(branch_1, 256, (7, 1), f"{block}.Branch_1.Conv2d_0c_7x1")
    branch_2 = _conv(x, 192, (1, 1), f"{block}.Branch_2.Conv2d_0a_1x1")
    branch_2 = _conv(branch_2, 192, (7, 1), f"{block}.Branch_2.Conv2d_0b_7x1")
    branch_2 = _conv(branch_2, 224, (1, 7), f"{block}.Branch_2.Conv2d_0c_1x7")
    branch_2 = _conv(branch_2, 224, (7, 1), f"{block}.Branch_2.Conv2d_0d_7x1")
    branch_2 = _conv(branch_2, 256, (1, 7), f"{block}.Branch_2.Conv2d_0e_1x7")
    branch_3 = _avg_pool(x, f"{block}.Branch_3.AvgPool_0a_3x3")
    branch_3 = _conv(branch_3, 128, (1, 1), f"{block}.Branch_3.Conv2d_0b_1x1")
    return _concat([branch_0, branch_1, branch_2, branch_3], block)


def _reduction_b(x: Any, block: str) -> Any:
    """Slim's ``block_reduction_b``: 17x17x1024 to 8x8x1536."""
    branch_0 = _conv(x, 192, (1, 1), f"{block}.Branch_0.Conv2d_0a_1x1")
    branch_0 = _conv(
        branch_0, 192, (3, 3), f"{block}.Branch_0.Conv2d_1a_3x3", strides=2, padding="valid"
    )
    branch_1 = _conv(x, 256, (1, 1), f"{block}.Branch_1.Conv2d_0a_1x1")
    branch_1 = _conv(branch_1, 256, (1, 7), f"{block}.Branch_1.Conv2d_0b_1x7")
    branch_1 = _conv(branch_1, 320, (7, 1), f"{block}.Branch_1.Conv2d_0c_7x1")
    branch_1 = _conv(
        branch_1, 320, (3, 3), f"{block}.Branch_1.Conv2d_1a_3x3", strides=2, padding="valid"
    )
    branch_2 = _max_pool(x, f"{block}.Branch_2.MaxPool_1a_3x3")
    return _concat([branch_0, branch_1, branch_2], block)


def _inception_c(x: Any, block: str) -> Any:
    """Slim's ``block_inception_c``: 8x8x1536 in and out; branches 1 and 2 split in two."""
    branch_0 = _conv(x, 256, (1, 1), f"{block}.Branch_0.Conv2d_0a_1x1")
    branch_1 = _conv(x, 384, (1, 1), f"{block}.Branch_1.Conv2d_0a_1x1")
    branch_1 = _concat(
        [
            _conv(branch_1, 256, (1, 3), f"{block}.Branch_1.Conv2d_0b_1x3"),
            _conv(branch_1, 256, (3, 1), f"{block}.Branch_1.Conv2d_0c_3x1"),
        ],
        f"{block}.Branch_1.concat",
    )
    branch_2 = _conv(x, 384, (1, 1), f"{block}.Branch_2.Conv2d_0a_1x1")
    branch_2 = _conv(branch_2, 448, (3, 1), f"{block}.Branch_2.Conv2d_0b_3x1")
    branch_2 = _conv(branch_2, 512, (1, 3), f"{block}.Branch_2.Conv2d_0c_1x3")
    branch_2 = _concat(
        [
            _conv(branch_2, 256, (1, 3), f"{block}.Branch_2.Conv2d_0d_1x3"),
            _conv(branch_2, 256, (3, 1), f"{block}.Branch_2.Conv2d_0e_3x1"),
        ],
        f"{block}.Branch_2.concat",
    )
    branch_3 = _avg_pool(x, f"{block}.Branch_3.AvgPool_0a_3x3")
    branch_3 = _conv(branch_3, 256, (1, 1), f"{block}.Branch_3.Conv2d_0b_1x1")
    return _concat([branch_0, branch_1, branch_2, branch_3], block)


register_backbones = builtin_hook(__name__)
