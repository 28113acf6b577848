"""zoo-tinynet: a tiny CNN backbone and a command, as an example of a third-party zoo plugin."""

from __future__ import annotations

from typing import Any

from zoo import BackboneSpec, hookimpl


def build_tinynet(input_shape: tuple[int, int, int], width: int = 16) -> Any:
    """Two conv blocks and global average pooling: images to ``2 * width`` features."""
    import keras

    inputs = keras.Input(shape=input_shape, name="images")
    x = inputs
    for index, filters in enumerate((width, 2 * width), start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", name=f"block{index}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"block{index}_bn")(x)
        x = keras.layers.ReLU(name=f"block{index}_out")(x)
        x = keras.layers.MaxPooling2D(name=f"block{index}_pool")(x)
    features = keras.layers.GlobalAveragePooling2D(name="features")(x)
    return keras.Model(inputs, features, name="tinynet")


@hookimpl
def register_backbones(register):
    register(
        BackboneSpec(
            name="tinynet",
            build=build_tinynet,
            input_shape=(32, 32, 3),
            preprocessing="tf",
            feature_dim=32,
            blocks=(r"block\d_out",),
            description="A tiny two-block CNN (example plugin)",
            licence="Apache-2.0",
        )
    )


@hookimpl
def register_commands(cli):
    import click

    @cli.command("tinynet")
    @click.option("--width", default=16, show_default=True, help="Filters of the first block.")
    def tinynet_command(width: int) -> None:
        """Print tinynet's layers and parameter count at its default input shape."""
        model = build_tinynet((32, 32, 3), width=width)
        for layer in model.layers:
            click.echo(f"{layer.name:16} {layer.count_params():>8,}")
        click.echo(f"total {model.count_params():,} parameters, {2 * width} features")
