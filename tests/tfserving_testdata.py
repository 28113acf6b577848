"""TF Serving's test models, written here the way its generators write them.

tensorflow_serving/servables/tensorflow/testdata holds models made by
saved_model_half_plus_two.py and export_counter.py: TF1 graphs built with
``tf.compat.v1`` and saved with a SavedModelBuilder (placeholders, ``tf.Example``
parsing, regress / classify / predict signatures, an asset and an init op), the same
model saved natively by ``tf.saved_model.save`` (TF2), and version folders named with
zero padding (``00000123``). The functions below build those models from the same
recipe, so the tests run TF Serving's own cases on the models TF Serving runs them on.

    y = a*x + b,  y2 = a*x + c,  y3 = a*x2 + c   (a = 0.5, b = 2, c = 3)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import tensorflow as tf

#: TF Serving's version folder for its test models.
VERSION = "00000123"
ASSET = "foo.txt"


def _feature_spec() -> dict:
    v1 = tf.compat.v1
    return {
        "x": v1.FixedLenFeature([1], dtype=tf.float32),
        "x2": v1.FixedLenFeature([1], dtype=tf.float32, default_value=[0.0]),
    }


def half_plus_two_tf1(export_dir: Path, *, b: float = 2.0, as_text: bool = False) -> Path:
    """The TF1 half_plus_two of saved_model_half_plus_two.py (``b=3``: half_plus_three)."""
    v1 = tf.compat.v1
    export_dir = Path(export_dir)
    builder = v1.saved_model.builder.SavedModelBuilder(str(export_dir))
    with tempfile.TemporaryDirectory() as assets, v1.Session(graph=tf.Graph()) as session:
        (Path(assets) / ASSET).write_text("asset-file-contents")
        a = v1.Variable(0.5, name="a")
        b_var = v1.Variable(b, name="b")
        c = v1.Variable(3.0, name="c")
        serialized = v1.placeholder(tf.string, name="tf_example", shape=[None])
        example = v1.parse_example(serialized, _feature_spec())
        x = tf.identity(example["x"], name="x")
        y = tf.identity(tf.add(tf.multiply(a, x), b_var), name="y")
        y2 = tf.identity(tf.add(tf.multiply(a, x), c), name="y2")
        x2 = tf.identity(example["x2"], name="x2")
        a2 = v1.Variable(0.5, name="a2")
        c2 = v1.Variable(3.0, name="c2")
        y3 = tf.identity(tf.add(tf.multiply(a2, x2), c2), name="y3")
        asset_path = tf.constant(str(Path(assets) / ASSET))
        v1.add_to_collection(v1.GraphKeys.ASSET_FILEPATHS, asset_path)
        filename = v1.Variable(ASSET, name="filename_tensor", trainable=False, collections=[])
        assign_filename = filename.assign(ASSET)
        info = v1.saved_model.utils.build_tensor_info
        constants = v1.saved_model.signature_constants

        def signature(inputs: dict, outputs: dict, method: str) -> object:
            return v1.saved_model.signature_def_utils.build_signature_def(
                {k: info(t) for k, t in inputs.items()},
                {k: info(t) for k, t in outputs.items()},
                method,
            )

        regress = constants.REGRESS_METHOD_NAME
        signatures = {
            "regress_x_to_y": signature({"inputs": serialized}, {"outputs": y}, regress),
            "regress_x_to_y2": signature({"inputs": serialized}, {"outputs": y2}, regress),
            "regress_x2_to_y3": signature({"inputs": x2}, {"outputs": y3}, regress),
            "classify_x_to_y": signature(
                {"inputs": serialized}, {"scores": y}, constants.CLASSIFY_METHOD_NAME
            ),
            "serving_default": signature({"x": x}, {"y": y}, constants.PREDICT_METHOD_NAME),
        }
        session.run(v1.global_variables_initializer())
        builder.add_meta_graph_and_variables(
            session,
            [v1.saved_model.tag_constants.SERVING],
            signature_def_map=signatures,
            assets_collection=v1.get_collection(v1.GraphKeys.ASSET_FILEPATHS),
            main_op=tf.group(assign_filename),
        )
        builder.save(as_text)
    return export_dir


class HalfPlusTwo(tf.Module):
    """The native TF2 half_plus_two of saved_model_half_plus_two.py."""

    def __init__(self, asset: Path) -> None:
        self.a = tf.Variable(0.5, name="a")
        self.b = tf.Variable(2.0, name="b")
        self.c = tf.Variable(3.0, name="c")
        self.asset = tf.saved_model.Asset(str(asset))

    def _parse(self, serialized: tf.Tensor) -> tf.Tensor:
        return tf.io.parse_example(serialized, _feature_spec())["x"]

    @tf.function(input_signature=[tf.TensorSpec(shape=[1], dtype=tf.float32)])
    def predict(self, x: tf.Tensor) -> dict:
        return {"y": self.a * x + self.b}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress_xy(self, serialized: tf.Tensor) -> dict:
        return {"outputs": self.a * self._parse(serialized) + self.b}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress_xy2(self, serialized: tf.Tensor) -> dict:
        return {"outputs": self.a * self._parse(serialized) + self.c}

    @tf.function(input_signature=[tf.TensorSpec(shape=[1], dtype=tf.float32, name="inputs")])
    def regress_x2y3(self, x2: tf.Tensor) -> dict:
        return {"outputs": self.a * x2 + self.c}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify_xy(self, serialized: tf.Tensor) -> dict:
        return {"scores": self.a * self._parse(serialized) + self.b}

    @tf.function(input_signature=[tf.TensorSpec(shape=[1], dtype=tf.float32, name="inputs")])
    def classify_x2y3(self, x2: tf.Tensor) -> dict:
        return {"scores": self.a * x2 + self.c}


def half_plus_two_tf2(export_dir: Path) -> Path:
    """The TF2 half_plus_two, saved by ``tf.saved_model.save`` with its six signatures."""
    export_dir = Path(export_dir)
    with tempfile.TemporaryDirectory() as assets:
        (Path(assets) / ASSET).write_text("asset-file-contents")
        model = HalfPlusTwo(Path(assets) / ASSET)
        signatures = {
            "regress_x_to_y": model.regress_xy,
            "regress_x_to_y2": model.regress_xy2,
            "regress_x2_to_y3": model.regress_x2y3,
            "classify_x_to_y": model.classify_xy,
            "classify_x2_to_y3": model.classify_x2y3,
            "serving_default": model.predict,
        }
        tf.saved_model.save(model, str(export_dir), signatures=signatures)
    return export_dir


def half_plus_two_tflite(export_dir: Path) -> Path:
    """``model.tflite``, as saved_model_half_plus_two.py writes it with ``as_tflite``: the
    TF1 graph converted from its session, x (shape [1, 1]) in, y out, no SavedModel."""
    v1 = tf.compat.v1
    export_dir = Path(export_dir)
    export_dir.mkdir(parents=True, exist_ok=True)
    with v1.Session(graph=tf.Graph()) as session:
        a = v1.Variable(0.5, name="a")
        b = v1.Variable(2.0, name="b")
        serialized = v1.placeholder(tf.string, name="tf_example", shape=[None])
        x = tf.ensure_shape(v1.parse_example(serialized, _feature_spec())["x"], (1, 1), name="x")
        y = tf.identity(tf.add(tf.multiply(a, x), b), name="y")
        session.run(v1.global_variables_initializer())
        model = v1.lite.TFLiteConverter.from_session(session, [x], [y]).convert()
    (export_dir / "model.tflite").write_bytes(model)
    return export_dir


def half_plus_two_tflite_with_signature(export_dir: Path, saved_model: Path) -> Path:
    """``model.tflite`` carrying a ``serving_default`` signature (x in, y out), converted
    from the TF2 half_plus_two SavedModel at ``saved_model``."""
    export_dir = Path(export_dir)
    export_dir.mkdir(parents=True, exist_ok=True)
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model), signature_keys=["serving_default"]
    )
    (export_dir / "model.tflite").write_bytes(converter.convert())
    return export_dir


def counter(export_dir: Path) -> Path:
    """export_counter.py's model: a counter variable and four stateful signatures."""
    v1 = tf.compat.v1
    builder = v1.saved_model.builder.SavedModelBuilder(str(export_dir))
    with v1.Session(graph=tf.Graph()) as session:
        count = v1.Variable(0.0, dtype=tf.float32, name="counter", use_resource=False)  # TF1 era
        increment = count.assign_add(1.0)
        delta = v1.placeholder(dtype=tf.float32, name="delta")
        increment_by = count.assign_add(delta)
        reset = count.assign(0.0)
        session.run(v1.global_variables_initializer())
        info = v1.saved_model.utils.build_tensor_info
        predict = v1.saved_model.signature_constants.PREDICT_METHOD_NAME

        def signature(inputs: dict, output: object) -> object:
            return v1.saved_model.signature_def_utils.build_signature_def(
                {k: info(t) for k, t in inputs.items()}, {"output": info(output)}, predict
            )

        builder.add_meta_graph_and_variables(
            session,
            [v1.saved_model.tag_constants.SERVING],
            signature_def_map={
                "get_counter": signature({}, count),
                "incr_counter": signature({}, increment),
                "incr_counter_by": signature({"delta": delta}, increment_by),
                "reset_counter": signature({}, reset),
            },
        )
        builder.save()
    return Path(export_dir)


def bad_half_plus_two(export_dir: Path) -> Path:
    """export_bad_half_plus_two.py's model: an old SessionBundle (export.meta and a
    checkpoint, no signatures), which no SavedModel loader loads."""
    v1 = tf.compat.v1
    export_dir = Path(export_dir)
    export_dir.mkdir(parents=True, exist_ok=True)
    with v1.Session(graph=tf.Graph()) as session:
        a = v1.Variable(0.5)
        b = v1.Variable(2.0)
        x = v1.placeholder(tf.float32)
        tf.add(tf.multiply(a, x), b)
        session.run(v1.global_variables_initializer())
        saver = v1.train.Saver()
        saver.export_meta_graph(filename=str(export_dir / "export.meta"))
        saver.save(session, str(export_dir / "export"), write_meta_graph=False)
    return export_dir


def tf_text_regression(export_dir: Path) -> Path:
    """A half_plus_two that needs TF Text's ops (a tokenizer counts the 2 of ``b``), as
    upstream's tf_text_regression model needs them: the server must have those ops."""
    import tensorflow_text as text

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def predict(self, x: tf.Tensor) -> dict:
            words = text.WhitespaceTokenizer().tokenize(tf.constant(["half plus"]))
            return {"y": 0.5 * x + tf.cast(words.row_lengths()[0], tf.float32)}

    model = Model()
    tf.saved_model.save(model, str(export_dir), signatures={"serving_default": model.predict})
    return Path(export_dir)


#: The config files of TF Serving's testdata, as upstream writes them.
GOOD_MODEL_CONFIG = """model_config_list: {
  config: {
    name: "half_plus_two",
    base_path: "${TEST_HALF_PLUS_TWO_DIR}",
    model_platform: "tensorflow"
  },
  config: {
    name: "half_plus_three",
    base_path: "${TEST_HALF_PLUS_THREE_DIR}",
    model_platform: "tensorflow"
  }
}
"""
BAD_MODEL_CONFIG = "improperly formatted file"
BATCHING_CONFIG = """max_batch_size { value: 128 }
batch_timeout_micros { value: 0 }
max_enqueued_batches { value: 1000000 }
num_batch_threads { value: 8 }
"""
MONITORING_CONFIG = """prometheus_config: {
  enable: true,
  path: "/monitoring/prometheus/metrics"
}
"""


def write_testdata(root: Path) -> Path:
    """servables/tensorflow/testdata as TF Serving's tests use it, under ``root``."""
    root = Path(root)
    half_plus_two_tf1(root / "saved_model_half_plus_two_cpu" / VERSION)
    half_plus_two_tf2(root / "saved_model_half_plus_two_tf2_cpu" / VERSION)
    half_plus_two_tf1(root / "saved_model_half_plus_three" / VERSION, b=3.0)
    for version in (VERSION, "00000124"):
        half_plus_two_tf1(root / "saved_model_half_plus_two_2_versions" / version)
    counter(root / "saved_model_counter" / VERSION)
    bad_half_plus_two(root / "bad_half_plus_two" / VERSION)
    half_plus_two_tflite(root / "saved_model_half_plus_two_tflite" / VERSION)
    tf_text_regression(root / "tf_text_regression" / "01")
    half_plus_two_tflite_with_signature(
        root / "saved_model_half_plus_two_tflite_with_sigdef" / VERSION,
        root / "saved_model_half_plus_two_tf2_cpu" / VERSION,
    )
    for name, text in (
        ("good_model_config.txt", GOOD_MODEL_CONFIG),
        ("bad_model_config.txt", BAD_MODEL_CONFIG),
        ("batching_config.txt", BATCHING_CONFIG),
        ("monitoring_config.txt", MONITORING_CONFIG),
    ):
        (root / name).write_text(text)
    return root


def example(**features: float) -> tf.train.Example:
    """A tf.Example of float features, as the half_plus_two signatures parse them."""
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                name: tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
                for name, value in features.items()
            }
        )
    )
