"""Every built-in backbone builds at a small size and yields features of its declared size."""

from __future__ import annotations

import re

import numpy as np
import pytest

import zoo
from zoo import SpecError

SMALL_SHAPES = {
    "resnet50": (32, 32, 3),
    "resnet101": (32, 32, 3),
    "resnet152": (32, 32, 3),
    "resnet50_v2": (32, 32, 3),
    "inception_v3": (75, 75, 3),
    "inception_resnet_v2": (75, 75, 3),
    "inception_v4": (75, 75, 3),
    "nasnet_mobile": (32, 32, 3),
    "nasnet_large": (32, 32, 3),
    "astro_cnn": (48, 48, 1),
    "efficientnet_b0": (32, 32, 3),
    "mobilenet_v2": (32, 32, 3),
    "convnext_tiny": (32, 32, 3),
    "vgg16": (32, 32, 3),
    "vgg19": (32, 32, 3),
}


#: Built quickly enough for the quick loop; the others are marked heavy.
QUICK_BUILDS = {"astro_cnn", "mobilenet_v2", "vgg16"}


def test_every_registered_builtin_is_covered():
    builtin = {s.name for s in zoo.list_backbones() if s.distribution == "zoo"}
    assert builtin == set(SMALL_SHAPES)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=() if name in QUICK_BUILDS else pytest.mark.heavy)
        for name in sorted(SMALL_SHAPES)
    ],
)
def test_builtin_builds_and_yields_declared_features(name):
    shape = SMALL_SHAPES[name]
    model = zoo.create_backbone(name, input_shape=shape)
    spec = model.backbone_spec
    features = model(np.random.default_rng(0).random((2, *shape), dtype="float32"))
    assert tuple(features.shape) == (2, spec.feature_dim)
    assert model.load_report is None  # random initialisation
    names = [layer.name for layer in model.layers]
    boundaries = [n for n in names if any(re.fullmatch(p, n) for p in spec.blocks)]
    assert len(boundaries) >= 3, f"{name}: block patterns {spec.blocks} found {boundaries}"


def test_astro_cnn_features_ignore_rotations_and_flips():
    model = zoo.create_backbone("astro_cnn", input_shape=(64, 64, 3))
    images = np.random.default_rng(1).normal(size=(3, 64, 64, 3)).astype("float32")
    reference = model(images, training=False).numpy()
    scale = np.abs(reference).max()
    for turned in (
        np.rot90(images, 1, axes=(1, 2)),
        np.rot90(images, 2, axes=(1, 2)),
        images[:, :, ::-1],
        images[:, ::-1],
        np.transpose(images, (0, 2, 1, 3)),
    ):
        features = model(np.ascontiguousarray(turned), training=False).numpy()
        np.testing.assert_allclose(features, reference, atol=1e-5 * scale)
    other = model(np.ascontiguousarray(images[::-1]), training=False).numpy()
    assert not np.allclose(other, reference, atol=1e-5 * scale)  # it does see the images


def test_astro_cnn_rejects_shapes_outside_its_design():
    with pytest.raises(SpecError, match="square cutouts of 48 to 128"):
        zoo.create_backbone("astro_cnn", input_shape=(64, 48, 3))
    with pytest.raises(SpecError, match="1 to 5 bands"):
        zoo.create_backbone("astro_cnn", input_shape=(64, 64, 6))


def test_input_shape_may_give_size_only():
    model = zoo.create_backbone("astro_cnn", input_shape=(96, 96))
    assert tuple(model.inputs[0].shape[1:]) == (96, 96, 3)


def test_preprocessing_layer_schemes():
    from zoo.preprocessing import Preprocessing

    pixels = np.array([[[[0.0, 127.5, 255.0]]]], dtype="float32")
    np.testing.assert_allclose(Preprocessing("tf")(pixels), [[[[-1.0, 0.0, 1.0]]]], atol=1e-6)
    caffe = Preprocessing("caffe")(pixels).numpy()
    np.testing.assert_allclose(caffe, [[[[255 - 103.939, 127.5 - 116.779, 0 - 123.68]]]], atol=1e-4)
    torch = Preprocessing("torch")(pixels).numpy()
    np.testing.assert_allclose(torch[0, 0, 0, 0], (0 - 0.485) / 0.229, atol=1e-5)
    flux = np.random.default_rng(2).normal(size=(2, 16, 16, 1)).astype("float32")
    stretched = Preprocessing("asinh")(flux).numpy()
    np.testing.assert_allclose(Preprocessing("asinh")(flux * 1000.0).numpy(), stretched, atol=1e-4)
    assert np.abs(stretched).max() < 10
