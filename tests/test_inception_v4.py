"""Inception v4 in Keras against TF-Slim's checkpoint: variable names, shapes and blocks.

tests/data/inception_v4_slim_variables.txt lists every variable that TF-Slim's
``nets/inception_v4.py`` creates at 299x299x3 with 1001 classes (the variables of the
public ``inception_v4.ckpt``), written from slim's code and not from the Keras model.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from zoo.errors import SpecError
from zoo.plugins.inception import inception_v4
from zoo.registry_file import builtin_specs

pytestmark = pytest.mark.heavy

SLIM_VARIABLES = Path(__file__).parent / "data" / "inception_v4_slim_variables.txt"
MIN_SIZE = 75  # Mixed_7a's VALID 3x3 stride-2 convs end at 1x1 here, slim's net as well
SKIPPED_SCOPES = ("InceptionV4/Logits/", "InceptionV4/AuxLogits/")
BLOCK_ENDS = [
    "Mixed_3a",
    "Mixed_4a",
    "Mixed_5a",
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_5e",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
    "Mixed_6f",
    "Mixed_6g",
    "Mixed_6h",
    "Mixed_7a",
    "Mixed_7b",
    "Mixed_7c",
    "Mixed_7d",
]


@pytest.fixture(scope="module")
def model():
    return inception_v4((299, 299, 3))


def _spec():
    """The packaged catalog's entry, so the test checks the rules zoo really uses."""
    return next(s for s in builtin_specs("zoo.plugins.inception") if s.name == "inception_v4")


def _slim_variables() -> dict[str, tuple[int, ...]]:
    variables = {}
    for line in SLIM_VARIABLES.read_text().splitlines():
        name, shape = line.split("\t")
        variables[name] = tuple(int(d) for d in shape.split(",")) if shape else ()
    return variables


def _rename(name: str) -> str:
    for pattern, replacement in _spec().checkpoint_rename:
        name = re.sub(pattern, replacement, name)
    return name


def test_features_are_1536_wide(model):
    assert model.name == "inception_v4"
    features = model(np.zeros((2, 299, 299, 3), "float32"), training=False)
    assert tuple(features.shape) == (2, 1536)


def test_variable_list_holds_the_whole_checkpoint():
    variables = _slim_variables()
    assert len(variables) == 609
    assert variables["global_step"] == ()
    assert variables["InceptionV4/Logits/Logits/weights"] == (1536, 1001)
    assert variables["InceptionV4/AuxLogits/Aux_logits/weights"] == (768, 1001)
    assert variables["InceptionV4/Conv2d_1a_3x3/weights"] == (3, 3, 3, 32)


def test_checkpoint_maps_onto_every_model_variable(model):
    backbone = {
        name: shape
        for name, shape in _slim_variables().items()
        if name != "global_step" and not name.startswith(SKIPPED_SCOPES)
    }
    renamed = {_rename(name): shape for name, shape in backbone.items()}
    keras_variables = {v.path: tuple(v.shape) for v in model.weights}

    assert len(renamed) == len(backbone) == 596
    assert set(renamed) == set(keras_variables)
    mismatched = {k: (s, keras_variables[k]) for k, s in renamed.items() if keras_variables[k] != s}
    assert not mismatched
    assert _rename("InceptionV4/Mixed_5b/Branch_1/Conv2d_0b_3x3/BatchNorm/moving_mean") == (
        "Mixed_5b.Branch_1.Conv2d_0b_3x3.BatchNorm/moving_mean"
    )


def test_blocks_end_at_the_mixed_layers_in_order(model):
    patterns = _spec().blocks
    ends = [
        layer.name
        for layer in model.layers
        if any(re.fullmatch(pattern, layer.name) for pattern in patterns)
    ]
    assert ends == BLOCK_ENDS


@pytest.mark.parametrize("channels", [1, 5])
def test_builds_at_the_minimum_size(channels):
    small = inception_v4((MIN_SIZE, MIN_SIZE, channels))
    features = small(np.zeros((1, MIN_SIZE, MIN_SIZE, channels), "float32"), training=False)
    assert tuple(features.shape) == (1, 1536)


def test_smaller_inputs_are_refused_by_name():
    with pytest.raises(SpecError, match=f"at least {MIN_SIZE}x{MIN_SIZE}"):
        inception_v4((MIN_SIZE - 1, 299, 3))


def test_slim_checkpoint_loads_through_create_backbone(tmp_path):
    """A name-based checkpoint with slim's variables, as in inception_v4.ckpt, loads by the rules."""
    import tensorflow as tf

    import zoo

    rng = np.random.default_rng(0)
    variables = _slim_variables()
    values = {
        name: (rng.random(shape, dtype="float32") + 0.5 if shape else np.int64(1000))
        for name, shape in variables.items()
    }
    prefix = str(tmp_path / "inception_v4.ckpt")
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=list(values),
        shape_and_slices=[""] * len(values),
        tensors=[tf.constant(v) for v in values.values()],
    )
    model = zoo.create_backbone("inception_v4", weights=prefix, input_shape=(MIN_SIZE, MIN_SIZE, 1))
    report = model.load_report
    assert report.kind == "TF1 checkpoint"
    assert len(report.matched) == 596 and report.missing == [] and report.unexpected == []
    assert set(report.skipped) == {
        n for n in variables if n == "global_step" or n.startswith(SKIPPED_SCOPES)
    }
    assert [name for name, _ in report.adapted] == ["Conv2d_1a_3x3/kernel"]
    loaded = {v.path: v.numpy() for v in model.weights}
    name = "InceptionV4/Mixed_6c/Branch_2/Conv2d_0d_7x1/BatchNorm/moving_variance"
    np.testing.assert_array_equal(loaded[_rename(name)], values[name])
    stem = values["InceptionV4/Conv2d_1a_3x3/weights"]
    np.testing.assert_allclose(
        loaded["Conv2d_1a_3x3/kernel"], stem.sum(axis=2, keepdims=True), rtol=1e-5
    )
