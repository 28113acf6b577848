"""Exports for TF Serving: layout, signatures in a clean process, parity, warmup, versions."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from click.testing import CliRunner

import zoo
from helpers import CLASSES, MODES
from zoo.cli import cli
from zoo.data.dataset import Sample
from zoo.data.synth import write_synthetic_dataset
from zoo.export import check as check_export
from zoo.train.evaluate import predict


def test_export_lays_out_a_version_tf_serving_loads(shared_export, shared_run):
    run, done = shared_run.run, shared_export
    version = shared_run.root / "models" / "galaxies" / "1"
    assert done.version == 1 and done.path == version and done.check is None  # not asked for
    for name in ("saved_model.pb", "variables/variables.index", "assets/labels.txt", "zoo.json"):
        assert (version / name).is_file(), name
    assert (version / "assets.extra" / "tf_serving_warmup_requests").is_file()
    assert (version / "assets" / "labels.txt").read_text().split() == list(run.labels)
    assert [p.name for p in version.parent.iterdir()] == ["1"]  # nothing but versions
    manifest = json.loads((version / "zoo.json").read_text())
    assert set(manifest["signatures"]) == {"serving_default", "predict_images", "classify"}
    assert manifest["signatures"]["classify"]["method"] == "tensorflow/serving/classify"
    assert manifest["input"] == manifest["input"] | {"size": [48, 48], "channels": 3}
    assert manifest["data"]["split_digests"] == run.config["data"]["split_digests"]
    assert manifest["metrics"]["test"]["accuracy"] == run.metrics["test"]["accuracy"]
    assert manifest["backbone"]["name"] == "astro_small" and "tensorflow" in manifest["versions"]


def test_the_savedmodel_holds_its_signatures_variables_and_labels_only(shared_export):
    """No Keras model in its object graph: tf.saved_model.save would trace and store a
    function for each (doubling the export's time and its saved_model.pb on ResNet-50)."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel.FromString(
        (shared_export.path / "saved_model.pb").read_bytes()
    )
    graph = proto.meta_graphs[0].object_graph_def
    assert {child.local_name for child in graph.nodes[0].children} == {
        "model_variables", "labels_file", "settings", "signatures",
    }  # fmt: skip
    assert len(graph.concrete_functions) == 3  # one per signature


CLEAN = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2
    version, image = sys.argv[1], open(sys.argv[2], "rb").read()
    model = tf.saved_model.load(version)
    default = model.signatures["serving_default"](images=tf.constant([image, image]))
    example = tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image]))}))
    classify = model.signatures["classify"](inputs=tf.constant([example.SerializeToString()]))
    pixels = tf.zeros([1, 48, 48, 3])
    floats = model.signatures["predict_images"](images=pixels)
    proto = saved_model_pb2.SavedModel.FromString(open(version + "/saved_model.pb", "rb").read())
    print(json.dumps({
        "default": {k: list(v.shape) for k, v in default.items()},
        "labels": [x.decode() for x in default["top_labels"].numpy()[0]],
        "classes": [x.decode() for x in classify["classes"].numpy()[0]],
        "scores": classify["scores"].numpy()[0].tolist(),
        "top_scores": default["top_scores"].numpy()[0].tolist(),
        "floats": list(floats["probabilities"].shape),
        "method": proto.meta_graphs[0].signature_def["classify"].method_name,
        "zoo": sorted(m for m in sys.modules if m.split(".")[0] == "zoo"),
    }))
    """
)


@pytest.mark.subprocess
def test_every_signature_runs_in_a_process_without_zoo(shared_run, shared_export, tmp_path):
    data, run, done = shared_run.data, shared_run.run, shared_export
    image = data / CLASSES[0] / f"{CLASSES[0]}_00003.png"
    out = subprocess.run(
        [sys.executable, "-I", "-c", CLEAN, str(done.path), str(image)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["zoo"] == []
    assert result["default"]["probabilities"] == [2, 3] and result["default"]["top_labels"] == [
        2,
        3,
    ]
    assert set(result["labels"]) == set(run.labels) and result["classes"] == result["labels"]
    assert result["scores"] == pytest.approx(result["top_scores"], abs=1e-6)
    assert result["floats"] == [1, 3] and result["method"] == "tensorflow/serving/classify"
    feature_dim = run.model.get_layer("head").inputs[0].shape[-1]
    assert result["default"]["features"] == [2, feature_dim]


def test_the_features_output_is_the_representation_the_head_reads(shared_run, served_model):
    """Every predict signature also answers with the pooled features, for embeddings."""
    from zoo.train.model import classifier_parts

    encoder, head = classifier_parts(shared_run.run.model)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 48, 48, 3)).astype("float32")
    served = served_model.signatures["predict_images"](images=pixels)
    np.testing.assert_allclose(served["features"].numpy(), encoder(pixels), atol=1e-5)
    np.testing.assert_allclose(served["probabilities"].numpy(), head(encoder(pixels)), atol=1e-5)


@pytest.fixture(scope="module")
def served_model(shared_export):
    import tensorflow as tf

    return tf.saved_model.load(str(shared_export.path))


@pytest.mark.parametrize("name", sorted(MODES))
def test_served_bytes_give_what_zoo_evaluate_gives(shared_run, served_model, name):
    """PNG in every mode decodes to the very pixels training read; JPEG decoders may differ by
    a grey level here and there, which moves a probability by well under a percent."""
    import tensorflow as tf

    data, run, served = shared_run.data, shared_run.run, served_model
    path = next(data.rglob(name))
    online = served.signatures["serving_default"](images=tf.constant([path.read_bytes()]))
    offline = predict(run.model, [Sample(str(path), name, 0, "test", "")], run.geometry)
    tolerance = 5e-3 if name.endswith(".jpg") else 1e-5
    np.testing.assert_allclose(online["probabilities"].numpy(), offline, atol=tolerance)


@pytest.mark.subprocess
def test_warmup_records_parse_as_prediction_logs_and_run(shared_export):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    version = shared_export.path
    records = tf.data.TFRecordDataset(str(version / "assets.extra" / "tf_serving_warmup_requests"))
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in records]
    kinds = sorted(
        (kind, getattr(log, kind).request.model_spec.signature_name)
        for log in logs
        for kind in [log.WhichOneof("log_type")]
    )
    assert kinds == [
        ("classify_log", "classify"),
        ("predict_log", "predict_images"),
        ("predict_log", "serving_default"),
    ]
    assert all(
        log.HasField("predict_log")
        or len(log.classify_log.request.input.example_list.examples) == 4
        for log in logs
    )
    report = check_export(version)  # runs every record in a clean process
    assert report.ok, report.problems
    assert report.differences["classify/scores"] < 1e-5


@pytest.mark.subprocess
def test_versions_number_up_and_are_replaced_only_with_force(shared_run, tmp_path):
    run, base = shared_run.run, tmp_path / "models"
    assert zoo.export(run.path, base, "galaxies", check=False).version == 1
    runner = CliRunner()
    args = ["export", str(run.path), "--base", str(base), "--name", "galaxies"]
    second = runner.invoke(cli, [*args, "--check"])  # checked in a clean process, and printed
    assert second.exit_code == 0, second.output
    assert (
        "exported version 2" in second.output and f"{base / 'galaxies' / '2'}: ok" in second.output
    )
    before = (base / "galaxies" / "1" / "saved_model.pb").stat().st_mtime_ns
    refused = runner.invoke(cli, [*args, "--version", "1"])
    assert refused.exit_code == 1 and "already exists; pass --force" in refused.output
    assert "next free one (3)" in refused.output
    assert (base / "galaxies" / "1" / "saved_model.pb").stat().st_mtime_ns == before
    zoo.export(run.path, base, "galaxies", version=1, force=True, check=False)
    assert (base / "galaxies" / "1" / "saved_model.pb").stat().st_mtime_ns != before
    assert sorted(p.name for p in (base / "galaxies").iterdir()) == ["1", "2"]
    bad = runner.invoke(cli, ["export", str(run.path), "--base", str(base), "--name", "../x"])
    assert bad.exit_code == 1 and "plain folder name" in bad.output


EXPORT = "import sys, zoo; zoo.export(sys.argv[1], sys.argv[2], 'galaxies', check=False)"


@pytest.mark.subprocess
def test_a_reader_never_sees_half_a_version_and_a_killed_export_leaves_none(shared_run, tmp_path):
    run, base = shared_run.run, tmp_path / "models"
    env_home = {"ZOO_HOME": str(shared_run.home)}
    command = [sys.executable, "-c", EXPORT, str(run.path), str(base)]
    killed = subprocess.Popen(command, env={**__import__("os").environ, **env_home})
    deadline = time.monotonic() + 300
    while not list((base / "galaxies").glob(".tmp-*")) if (base / "galaxies").exists() else True:
        assert killed.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not [p for p in (base / "galaxies").iterdir() if p.name.isdigit()]

    exporter = subprocess.Popen(command, env={**__import__("os").environ, **env_home})
    seen = set()
    while exporter.poll() is None:
        for version in (base / "galaxies").iterdir():
            if version.name.isdigit():
                seen.add(version.name)
                for name in ("saved_model.pb", "variables/variables.index", "zoo.json"):
                    assert (version / name).is_file(), (version, name)
        time.sleep(0.005)
    assert exporter.returncode == 0
    assert sorted(p.name for p in (base / "galaxies").iterdir()) == ["1"]  # the leftover is gone


def test_finetune_exports_only_when_asked(shared_run, tmp_path):
    """``zoo finetune --export`` itself runs in docs/serving.md; here, its refusals."""
    refused = CliRunner().invoke(
        cli,
        ["finetune", "astro_small", str(shared_run.data), "--out", str(tmp_path / "r"),
         "--name", "x"],
    )  # fmt: skip
    assert refused.exit_code == 2 and "--name goes with --export" in refused.output
    bad_name = CliRunner().invoke(
        cli,
        ["finetune", "astro_small", str(shared_run.data), "--out", str(tmp_path / "r"),
         "--export", str(tmp_path / "models"), "--name", "a/b"],
    )  # fmt: skip
    assert bad_name.exit_code == 1 and "plain folder name" in bad_name.output
    assert not (tmp_path / "r").exists()  # refused before anything was trained


@pytest.mark.subprocess
def test_a_graph_with_python_ops_is_refused(tmp_path):
    import tensorflow as tf

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, "x")])
        def serve(self, x):
            return {"y": tf.py_function(lambda v: v * 2, [x], tf.float32)}

    module = Module()
    tf.saved_model.save(module, str(tmp_path / "1"), signatures={"serving_default": module.serve})
    from zoo.export.check import check_version

    report = check_version(tmp_path / "1", {"serving_default": {"x": np.ones(2, "float32")}})
    assert not report.ok
    assert report.problems[0] == "Python-only ops, which TF Serving cannot run: EagerPyFunc"
    assert "EagerPyFunc" in report.ops


def export_of(tmp_path, backbone, data, check=False, **settings):
    """A one-epoch run on ``backbone``, exported (checked in a clean process if asked)."""
    run = zoo.finetune(backbone, data, tmp_path / "run", epochs=1, progress=False, **settings)
    done = zoo.export(run.path, tmp_path / "models", "m", check=check)
    assert not check or done.check.ok, done.check.problems
    return run, done


@pytest.mark.train
@pytest.mark.subprocess
def test_a_tf1_meta_graph_backbone_exports(tmp_path):
    """A TF1 graph's ops inside a Keras model: TensorFlow alone runs the export."""
    from helpers import write_tf1_model

    tf1 = write_tf1_model(tmp_path / "tf1")
    data = tmp_path / "grey"
    write_synthetic_dataset(data, CLASSES, 8, 16, 1, seed=3)
    options = zoo.ModelFileOptions(input_tensor="X:0", feature_tensor="ConvLayer_output:0")
    _, done = export_of(
        tmp_path, tf1["meta"], data, check=True, strategy="head", model_file=options
    )
    assert done.manifest["input"]["channels"] == 1 and "classify" in done.manifest["signatures"]


@pytest.mark.train
def test_a_savedmodel_backbone_exports(shared_run, tmp_path):
    data = shared_run.data
    source = zoo.create_backbone("astro_cnn", input_shape=(48, 48, 3), weights="simulated")
    source.export(str(tmp_path / "backbone"), verbose=False)
    run, done = export_of(tmp_path, str(tmp_path / "backbone"), data, strategy="head")
    assert run.config["backbone"]["build"] == "zoo.sources:build_from_source"
    assert done.manifest["weights"]["source"] is None  # a model file carries its weights


@pytest.mark.train
def test_a_fits_model_takes_float_pixels_by_default(shared_run, tmp_path):
    data = tmp_path / "fits"
    write_synthetic_dataset(data, CLASSES, 6, 48, 5, seed=4, fmt="fits")
    _, done = export_of(
        tmp_path, "astro_small", data, strategy="full", image_size=(48,), bands=("0", "2", "4"),
        registry_files=(str(shared_run.registry),),
    )  # fmt: skip
    signatures = done.manifest["signatures"]
    assert set(signatures) == {"serving_default", "predict_images"}
    assert signatures["serving_default"]["inputs"] == {
        "images": {"dtype": "float32", "shape": [-1, 48, 48, 3]}
    }
    assert (
        done.manifest["input"]["bands"] == ["0", "2", "4"]
        and done.manifest["input"]["encoded_images"] == []
    )


@pytest.mark.train
def test_a_mixed_precision_run_exports_a_float32_graph(shared_run, tmp_path):
    import keras
    import tensorflow as tf

    run, done = export_of(
        tmp_path, "astro_small", shared_run.data, strategy="head", image_size=(48,),
        mixed_precision=True, registry_files=(str(shared_run.registry),),
    )  # fmt: skip
    assert run.config["precision"] == "mixed_float16"
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the run
    served = tf.saved_model.load(str(done.path))
    pixels = tf.zeros([1, 48, 48, 3])
    assert served.signatures["predict_images"](images=pixels)["probabilities"].dtype == tf.float32
    stored = tf.train.load_checkpoint(str(done.path / "variables" / "variables"))
    assert tf.float16 not in set(stored.get_variable_to_dtype_map().values())


@pytest.mark.heavy
def test_a_resnet_exports(shared_run, tmp_path):
    _, done = export_of(
        tmp_path, "resnet50", shared_run.data, strategy="head", weights="none", image_size=(32,)
    )
    assert done.manifest["backbone"]["name"] == "resnet50"
