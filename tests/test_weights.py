"""Every weight source, written for real by the test, loads with a correct report.

The reference network is astro_cnn at 48x48x1 with every variable (batch-norm moving
statistics included) set to random values, saved in each format; after loading, the
features must equal the original's.
"""

from __future__ import annotations

import hashlib
import zipfile

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

import zoo
from helpers import write_tf1_model
from zoo import LoadRules, ModelFileOptions, WeightsError, load_registry
from zoo.cli import cli
from zoo.weights.loading import load_weights

SHAPE = (48, 48, 1)


def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = rng.normal(scale=0.2, size=tuple(variable.shape))
        if "variance" in variable.path:
            value = np.abs(value) + 0.5
        variable.assign(value.astype("float32"))
    return model


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(42).random((3, *SHAPE), dtype="float32")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, images):
    """A trained-looking astro_cnn saved in every Keras and TF2 format."""
    folder = tmp_path_factory.mktemp("reference")
    model = randomize(zoo.create_backbone("astro_cnn", input_shape=SHAPE))
    files = {
        "weights_h5": folder / "net.weights.h5",
        "keras": folder / "net.keras",
        "full_h5": folder / "net_full.h5",
        "legacy_weights_h5": folder / "net_legacy.h5",
    }
    model.save_weights(files["weights_h5"])
    model.save(files["keras"])
    model.save(files["full_h5"])
    write_legacy_weights(model, files["legacy_weights_h5"])
    files["tf2"] = tf.train.Checkpoint(model=model).write(str(folder / "tf2" / "ckpt"))
    return model(images, training=False).numpy(), files


def write_legacy_weights(model, path):
    """The Keras 2 weights-only layout that keras.applications downloads use."""
    with h5py.File(path, "w") as h5:
        layers = [layer for layer in model.layers if layer.weights]
        h5.attrs["layer_names"] = [layer.name.encode() for layer in layers]
        for layer in layers:
            group = h5.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:0" for w in layer.weights]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for name, weight in zip(names, layer.weights, strict=True):
                group.create_dataset(name, data=weight.numpy())


@pytest.mark.parametrize(
    ("fmt", "kind"),
    [
        ("weights_h5", "Keras weights"),
        ("keras", "Keras weights"),
        ("full_h5", "legacy Keras HDF5"),
        ("legacy_weights_h5", "legacy Keras HDF5"),
        ("tf2", "TF2 checkpoint"),
    ],
)
def test_each_format_loads_to_identical_features(reference, images, fmt, kind):
    expected, files = reference
    model = zoo.create_backbone(
        "astro_cnn", weights=files[fmt], input_shape=SHAPE, rules=LoadRules(strict=True)
    )
    report = model.load_report
    assert report.kind == kind
    assert len(report.matched) == len(model.weights)
    assert report.missing == [] and report.unexpected == [] and report.shape_mismatched == []
    np.testing.assert_allclose(model(images, training=False).numpy(), expected, atol=1e-6)


def test_tf2_checkpoint_from_its_directory(reference, images):
    expected, files = reference
    folder = str(files["tf2"]).rsplit("/", 1)[0]
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(
            model=zoo.create_backbone("astro_cnn", weights=files["tf2"], input_shape=SHAPE)
        ),
        folder + "_managed",
        max_to_keep=1,
    )
    manager.save()
    model = zoo.create_backbone("astro_cnn", weights=folder + "_managed", input_shape=SHAPE)
    np.testing.assert_allclose(model(images, training=False).numpy(), expected, atol=1e-6)


def test_first_convolution_is_adapted_to_other_channels(reference):
    _, files = reference
    rgb = zoo.create_backbone("astro_cnn", weights=files["weights_h5"], input_shape=(48, 48, 3))
    (adapted,) = rgb.load_report.adapted
    assert adapted[0] == "stem/kernel" and "averaged, repeated for 3" in adapted[1]
    grey = zoo.create_backbone("astro_cnn", weights=files["weights_h5"], input_shape=SHAPE)
    single = np.random.default_rng(3).random((2, *SHAPE), dtype="float32")
    np.testing.assert_allclose(
        rgb(np.repeat(single, 3, axis=3), training=False).numpy(),
        grey(single, training=False).numpy(),
        atol=1e-5,
    )


def test_shape_mismatch_is_reported_and_strict_fails(reference, tmp_path):
    _, files = reference
    wider = zoo.create_backbone("astro_cnn", input_shape=SHAPE)
    wider = keras.Model(wider.inputs, keras.layers.Dense(5, name="extra")(wider.outputs[0]))
    with pytest.raises(
        WeightsError, match=r"strict load .* 2 missing.*extra/kernel.*nothing was loaded"
    ):
        load_weights(wider, files["legacy_weights_h5"], strict=True)
    report = load_weights(wider, files["legacy_weights_h5"])
    assert report.missing == ["extra/kernel", "extra/bias"]

    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(files["legacy_weights_h5"].read_bytes())
    with h5py.File(damaged, "r+") as h5:
        del h5["block3_conv2/block3_conv2/kernel:0"]
        h5["block3_conv2/block3_conv2/kernel:0"] = np.zeros((3, 3, 128, 64), "float32")
    model = zoo.create_backbone("astro_cnn", input_shape=SHAPE)
    report = load_weights(model, damaged)
    assert report.shape_mismatched == [("block3_conv2/kernel", (3, 3, 128, 64), (3, 3, 128, 128))]
    assert len(report.matched) == len(model.weights) - 1 and not report.complete
    with pytest.raises(
        WeightsError,
        match=r"block3_conv2/kernel: source \[3, 3, 128, 64\] vs model \[3, 3, 128, 128\]",
    ):
        load_weights(model, damaged, strict=True)

    narrow = zoo.plugins.astro.astro_cnn(SHAPE, width=8)
    with pytest.raises(
        WeightsError,
        match=r"shapes differ \(block1_conv1/kernel: source \[3, 3, 16, 32\] vs model \[3, 3, 8, 16\]",
    ):
        load_weights(narrow, files["legacy_weights_h5"])


def test_skip_and_rename(reference):
    _, files = reference
    model = zoo.create_backbone(
        "astro_cnn",
        weights=files["legacy_weights_h5"],
        input_shape=SHAPE,
        rules=LoadRules(skip=[r"^block3_"]),
    )
    report = model.load_report
    assert all(name.startswith("block3_") for name in report.skipped) and report.skipped
    assert set(report.missing) == {v.path for v in model.weights if v.path.startswith("block3_")}
    with pytest.raises(WeightsError, match="no variable of .* matched the model"):
        zoo.create_backbone(
            "astro_cnn",
            weights=files["legacy_weights_h5"],
            input_shape=SHAPE,
            rules=LoadRules(rename=[("^", "x_")]),
        )


# --- TF1: graph-mode checkpoints and meta graphs, written as the old tutorials did ----------


@pytest.fixture(scope="module")
def tf1_model(tmp_path_factory):
    return write_tf1_model(tmp_path_factory.mktemp("tf1"))


def keras_twin():
    """The same network written in Keras, with Keras names."""
    images = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv1")(images)
    x = keras.layers.BatchNormalization(epsilon=1e-3, name="conv1_bn")(x)
    x = keras.layers.ReLU()(x)
    return keras.Model(images, keras.layers.GlobalAveragePooling2D()(x))


def test_tf1_name_based_checkpoint_loads_by_rules(tf1_model):
    model = keras_twin()
    report = load_weights(
        model,
        tf1_model["prefix"],
        rename=[("/weights$", "/kernel"), ("/biases$", "/bias")],
        strict=True,
    )
    assert report.kind == "TF1 checkpoint"
    assert {m for m, _ in report.matched} == {v.path for v in model.weights}
    assert "conv1_bn/moving_variance" in {m for m, _ in report.matched}
    assert set(report.skipped) == {"global_step", "logits/weights", "logits/weights/Momentum"}
    assert sorted(report.unexpected) == [
        "conv1/biases/Momentum",
        "conv1/weights/Momentum",
        "conv1_bn/beta/Momentum",
        "conv1_bn/gamma/Momentum",
    ]
    np.testing.assert_allclose(
        model(tf1_model["inputs"], training=False), tf1_model["features"], atol=1e-5
    )


def test_meta_graph_becomes_a_trainable_exportable_backbone(tf1_model, tmp_path):
    model = zoo.create_backbone(
        tf1_model["meta"],
        model_file=ModelFileOptions(input_tensor="X:0", feature_tensor="ConvLayer_output:0"),
    )
    report = model.load_report
    assert len(report.matched) == 6 and "global_step" in report.skipped
    np.testing.assert_allclose(model(tf1_model["inputs"]), tf1_model["features"], atol=1e-5)
    trainable = {w.path.split("/")[-1] for w in model.trainable_weights}
    assert trainable == {"conv1.weights", "conv1.biases", "conv1_bn.gamma", "conv1_bn.beta"}

    before = [w.numpy().copy() for w in model.trainable_weights]
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    model.fit(tf1_model["inputs"], np.ones((4, 8), "float32"), epochs=2, verbose=0)
    assert any(
        not np.allclose(a, w.numpy()) for a, w in zip(before, model.trainable_weights, strict=True)
    )
    after = model(tf1_model["inputs"]).numpy()

    model.save(tmp_path / "tuned.keras")
    reloaded = keras.saving.load_model(tmp_path / "tuned.keras")
    np.testing.assert_allclose(reloaded(tf1_model["inputs"]), after, atol=1e-6)
    model.export(str(tmp_path / "exported"), verbose=False)
    again = zoo.create_backbone(str(tmp_path / "exported"))
    np.testing.assert_allclose(again(tf1_model["inputs"]), after, atol=1e-6)


def test_meta_graph_feature_map_is_pooled(tf1_model):
    model = zoo.create_backbone(
        tf1_model["meta"], model_file=ModelFileOptions(input_tensor="X:0", feature_tensor="Relu:0")
    )
    assert tuple(model.outputs[0].shape) == (None, 8)
    assert len(model.load_report.matched) == 6
    np.testing.assert_allclose(model(tf1_model["inputs"]), tf1_model["features"], atol=1e-5)


def test_meta_graph_errors_name_the_file_and_tensor(tf1_model):
    with pytest.raises(WeightsError, match=r"model.ckpt-1.meta has no tensor 'Conv_output:0'"):
        zoo.create_backbone(
            tf1_model["meta"],
            model_file=ModelFileOptions(input_tensor="X:0", feature_tensor="Conv_output:0"),
        )
    with pytest.raises(WeightsError, match="name its image input and feature tensors"):
        zoo.create_backbone(tf1_model["meta"])
    with pytest.raises(WeightsError, match=r"also depend on placeholder\(s\) y:0"):
        zoo.create_backbone(
            tf1_model["meta"],
            model_file=ModelFileOptions(input_tensor="X:0", feature_tensor="Mean:0"),
        )
    with pytest.raises(WeightsError, match="is a TF1 meta graph: pass it as the source"):
        zoo.create_backbone("astro_cnn", weights=tf1_model["meta"], input_shape=SHAPE)


def test_corrupt_and_truncated_checkpoints_name_file_and_variable(tf1_model, tmp_path):
    prefix = tf1_model["prefix"]
    broken = tmp_path / "broken.ckpt"
    (tmp_path / "broken.ckpt.index").write_bytes(open(prefix + ".index", "rb").read())
    data = open(prefix + ".data-00000-of-00001", "rb").read()
    (tmp_path / "broken.ckpt.data-00000-of-00001").write_bytes(data[: len(data) // 3])
    with pytest.raises(
        WeightsError, match=r"cannot read variable '.*' from TF1 checkpoint .*broken.ckpt"
    ):
        load_weights(keras_twin(), broken, rename=[("/weights$", "/kernel"), ("/biases$", "/bias")])
    (tmp_path / "garbage.ckpt.index").write_bytes(b"not an index at all")
    with pytest.raises(WeightsError, match=r"cannot read TensorFlow checkpoint .*garbage.ckpt"):
        load_weights(keras_twin(), tmp_path / "garbage.ckpt")


def test_wrong_kinds_say_what_was_found(reference, tmp_path):
    _, files = reference
    (tmp_path / "random.bin").write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(
        WeightsError, match=r"cannot tell what kind of weights .*random.bin.*starts with"
    ):
        zoo.create_backbone("astro_cnn", weights=tmp_path / "random.bin", input_shape=SHAPE)
    with zipfile.ZipFile(tmp_path / "notkeras.keras", "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(WeightsError, match=r"zip archive but not a Keras .keras file .*readme.txt"):
        zoo.create_backbone("astro_cnn", weights=tmp_path / "notkeras.keras", input_shape=SHAPE)
    with h5py.File(tmp_path / "data.h5", "w") as h5:
        h5.create_dataset("images", data=np.zeros(3))
    with pytest.raises(
        WeightsError, match=r"HDF5 file without Keras weights \(top-level groups: images\)"
    ):
        zoo.create_backbone("astro_cnn", weights=tmp_path / "data.h5", input_shape=SHAPE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="directory without a checkpoint"):
        zoo.create_backbone("astro_cnn", weights=tmp_path / "empty", input_shape=SHAPE)
    with pytest.raises(WeightsError, match="'imagenett' is neither a weight name of 'resnet50'"):
        zoo.create_backbone("resnet50", weights="imagenett", input_shape=(32, 32, 3))
    truncated = tmp_path / "cut.weights.h5"
    truncated.write_bytes(files["weights_h5"].read_bytes()[:4000])
    with pytest.raises(WeightsError, match=r"cannot open HDF5 file .*cut.weights.h5"):
        zoo.create_backbone("astro_cnn", weights=truncated, input_shape=SHAPE)


# --- self-describing models -------------------------------------------------------------


def test_savedmodel_source_and_its_errors(reference, images, tmp_path):
    expected, files = reference
    model = zoo.create_backbone("astro_cnn", weights=files["keras"], input_shape=SHAPE)
    model.export(str(tmp_path / "sm"), verbose=False)
    loaded = zoo.create_backbone(str(tmp_path / "sm"))
    assert loaded.backbone_spec.input_shape == SHAPE
    np.testing.assert_allclose(loaded(images).numpy(), expected, atol=1e-5)
    assert loaded.trainable_weights  # fine-tunable
    with pytest.raises(WeightsError, match="has no signature 'nope' .*serving_default"):
        zoo.create_backbone(str(tmp_path / "sm"), model_file=ModelFileOptions(signature="nope"))
    with pytest.raises(WeightsError, match="has no output 'logits' .*output_0"):
        zoo.create_backbone(str(tmp_path / "sm"), model_file=ModelFileOptions(output="logits"))
    with pytest.raises(WeightsError, match="is a SavedModel, a self-describing model"):
        zoo.create_backbone("astro_cnn", weights=tmp_path / "sm", input_shape=SHAPE)
    with pytest.raises(WeightsError, match="carries no Keras metadata"):
        zoo.create_backbone(
            str(tmp_path / "sm"), model_file=ModelFileOptions(feature_layer="block3_out")
        )

    loaded.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    loaded.fit(images, np.ones((3, 128), "float32"), epochs=1, verbose=0)
    tuned = loaded(images).numpy()
    assert not np.allclose(tuned, expected, atol=1e-4)
    loaded.export(str(tmp_path / "tuned"), verbose=False)
    np.testing.assert_allclose(
        zoo.create_backbone(str(tmp_path / "tuned"))(images), tuned, atol=1e-5
    )


def test_keras2_savedmodel_is_cut_at_a_layer(tmp_path, zoo_home):
    import tf_keras

    images = tf_keras.Input((16, 16, 2))
    x = tf_keras.layers.Conv2D(6, 3, name="conv")(images)
    pooled = tf_keras.layers.GlobalAveragePooling2D(name="gap")(x)
    probs = tf_keras.layers.Dense(3, activation="softmax", name="probs")(pooled)
    classifier = tf_keras.Model(images, probs)
    classifier.save(str(tmp_path / "keras2"))
    batch = np.random.default_rng(4).random((2, 16, 16, 2), dtype="float32")
    expected = tf_keras.Model(images, pooled)(batch).numpy()

    cut = zoo.create_backbone(
        str(tmp_path / "keras2"), model_file=ModelFileOptions(feature_layer="gap")
    )
    np.testing.assert_allclose(cut(batch).numpy(), expected, atol=1e-6)
    assert list((zoo_home / "sources").iterdir())  # the cut is cached
    conv = zoo.create_backbone(
        str(tmp_path / "keras2"), model_file=ModelFileOptions(feature_layer="conv")
    )
    assert tuple(conv.outputs[0].shape) == (None, 6)
    with pytest.raises(WeightsError, match="no layer named 'fc'; its last layers are .*probs"):
        zoo.create_backbone(
            str(tmp_path / "keras2"), model_file=ModelFileOptions(feature_layer="fc")
        )


def test_full_keras_models_cut_at_a_layer(reference, images, tmp_path):
    expected, files = reference
    base = zoo.create_backbone("astro_cnn", weights=files["keras"], input_shape=SHAPE)
    classifier = keras.Model(
        base.inputs, keras.layers.Dense(4, activation="softmax", name="probs")(base.outputs[0])
    )
    classifier.save(tmp_path / "classifier.keras")
    classifier.save(tmp_path / "classifier.h5")
    for path in (tmp_path / "classifier.keras", tmp_path / "classifier.h5"):
        cut = zoo.create_backbone(
            str(path), model_file=ModelFileOptions(feature_layer="dihedral_pool")
        )
        np.testing.assert_allclose(cut(images, training=False).numpy(), expected, atol=1e-5)
        spatial = zoo.create_backbone(
            str(path), model_file=ModelFileOptions(feature_layer="block3_out")
        )
        assert tuple(spatial.outputs[0].shape) == (None, 128)  # a feature map is pooled
    with pytest.raises(WeightsError, match="has no layer named 'fc7'; its last layers are .*probs"):
        zoo.create_backbone(
            str(tmp_path / "classifier.keras"), model_file=ModelFileOptions(feature_layer="fc7")
        )


def test_keras_files_load_in_safe_mode_unless_told(tmp_path):
    images = keras.Input((8, 8, 1))
    doubled = keras.layers.Lambda(lambda t: t * 2.0)(images)
    keras.Model(images, keras.layers.GlobalAveragePooling2D()(doubled)).save(
        tmp_path / "lambda.keras"
    )
    with pytest.raises(WeightsError, match="safe_mode=False only if you trust it"):
        zoo.create_backbone(str(tmp_path / "lambda.keras"))
    model = zoo.create_backbone(
        str(tmp_path / "lambda.keras"), model_file=ModelFileOptions(safe_mode=False)
    )
    np.testing.assert_allclose(model(np.ones((1, 8, 8, 1), "float32")), [[2.0]])


def test_missing_source_path_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsError, match="neither a registered backbone nor a model"):
        zoo.create_backbone(str(tmp_path / "nothing.keras"))


# --- catalog weights, downloaded from a loopback server --------------------------------


def test_catalog_weights_download_verify_and_load(reference, images, server, tmp_path):
    expected, files = reference
    payload = files["weights_h5"].read_bytes()
    url = server.serve("astro/astro_cnn_lab.weights.h5", payload)
    catalog = tmp_path / "registry.yaml"
    catalog.write_text(
        "backbones:\n"
        "  astro_lab:\n"
        "    base: astro_cnn\n"
        "    input_shape: [48, 48, 1]\n"
        "    weights:\n"
        f"      lab: {{url: '{url}', sha256: '{hashlib.sha256(payload).hexdigest()}'}}\n"
    )
    registry = load_registry([catalog], user_registry=False)
    model = zoo.create_backbone("astro_lab", weights="lab", registry=registry, progress=False)
    np.testing.assert_allclose(model(images, training=False).numpy(), expected, atol=1e-6)
    assert model.load_report.complete and len(server.requests) == 1
    zoo.create_backbone("astro_lab", weights="lab", registry=registry, progress=False)
    assert len(server.requests) == 1  # the cache served the second load


def test_weights_inspect_cli(tf1_model, reference):
    _, files = reference
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "weights",
            "inspect",
            tf1_model["meta"],
            "--input-tensor",
            "X:0",
            "--feature-tensor",
            "ConvLayer_output:0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "16x16x1 -> 8 features" in result.output
    assert "6 matched, 3 skipped" in result.output
    result = runner.invoke(
        cli,
        [
            "weights",
            "inspect",
            "astro_cnn",
            "-w",
            str(files["weights_h5"]),
            "--input-shape",
            "48,48,3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.output)
    assert data["features"] == 128 and data["report"]["adapted"][0][0] == "stem/kernel"
    bad = runner.invoke(
        cli,
        ["weights", "inspect", "astro_cnn", "-w", "/nonexistent/w.h5", "--input-shape", "48,48"],
    )
    assert (
        bad.exit_code == 1 and "error: weights file /nonexistent/w.h5 does not exist" in bad.output
    )
