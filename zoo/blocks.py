"""Block boundaries inferred from a model's structure, for backbones that declare none.

"Unfreeze the top N blocks" needs to know where blocks end. Catalog backbones name
their block ends (``BackboneSpec.blocks``); a model file (``.keras``, ``.h5``) does not,
so they are read off its layers, in this order of preference:

1. stage ends: each layer where pooling or a stride shrinks the feature map (VGG's
   pools, ResNet's strided convolutions, most CNNs), and the last feature map;
2. residual merges: every ``Add`` layer, when the resolution never changes;
3. equal depth slices: the layers with weights cut into ``SLICES`` groups.

A model whose layers are hidden inside one wrapper (a SavedModel, a TF1 graph) has no
structure to read, and gets no blocks.
"""

from __future__ import annotations

import re
from typing import Any

SLICES = 4


def infer_blocks(model: Any) -> tuple[str, ...]:
    """Regexes naming the layers where the model's blocks end, in model order."""
    names = _stage_ends(model) or _residual_merges(model) or _depth_slices(model)
    return tuple(re.escape(name) for name in names)


def _stage_ends(model: Any) -> list[str]:
    """Each layer that shrinks the feature map (a stage ends there), and the last 4-D layer.

    Then the top block is the last stage: everything after the layer that brought the
    map to its final resolution.
    """
    maps = [(layer.name, _spatial(layer)) for layer in model.layers]
    maps = [(name, size) for name, size in maps if size is not None]
    ends = [
        name
        for (_, before), (name, size) in zip(maps, maps[1:], strict=False)
        if size[0] < before[0] or size[1] < before[1]
    ]
    if maps and (not ends or ends[-1] != maps[-1][0]):
        ends.append(maps[-1][0])
    return ends if len(ends) >= 2 else []


def _residual_merges(model: Any) -> list[str]:
    import keras

    merges = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Add)]
    return merges if len(merges) >= 2 else []


def _depth_slices(model: Any) -> list[str]:
    weighted = [layer.name for layer in model.layers if layer.weights]
    if len(weighted) < SLICES:
        return []
    return [weighted[(k * len(weighted)) // SLICES - 1] for k in range(1, SLICES + 1)]


def _spatial(layer: Any) -> tuple[int, int] | None:
    """(height, width) of a layer's 4-D output, or None."""
    try:
        shape = tuple(layer.output.shape)
    except (AttributeError, ValueError):
        return None
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        return None
    return int(shape[1]), int(shape[2])
