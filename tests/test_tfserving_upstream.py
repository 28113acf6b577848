"""TF Serving's own integration tests, run against zoo's embedded server.

A port of tensorflow_serving/model_servers/tensorflow_model_server_test.py and its base
(test_util/tensorflow_model_server_test_base.py): the same test names (in snake case),
the same requests and expectations, the server started with the same command line
(``--port``, ``--rest_api_port``, ``--rest_api_timeout_in_ms``, ``--grpc_socket_path``,
``--grpc_channel_arguments``, the model or config flags, ``--prefer_tflite_model``...)
as ``python -m zoo.serve.server`` in its own process, and the models of its testdata
written by tfserving_testdata.py the way TF Serving's generators write them. One server
per distinct command line, shared by the tests that ask for the same one, as upstream's
RunServer does. docs/serving.md lists every case and zoo's answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from tfserving_testdata import write_testdata

from helpers import free_port

pytestmark = pytest.mark.subprocess

RPC_TIMEOUT = 20.0
HTTP_REST_TIMEOUT_MS = 5000
WAIT_FOR_SERVER_READY_SECS = 120


class Servers:
    """Upstream's RunServer: one server process per distinct set of arguments."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.running: dict[tuple, tuple[subprocess.Popen, str, str]] = {}

    def run(
        self,
        model_name: str | None,
        model_path: Path | None,
        *,
        model_type: str = "tf",
        model_config_file: Path | None = None,
        monitoring_config_file: Path | None = None,
        batching_parameters_file: Path | None = None,
        grpc_channel_arguments: str = "",
        wait_for_server_ready: bool = True,
        pipe: int | None = None,
        model_config_file_poll_period: int | None = None,
    ) -> tuple[subprocess.Popen, str, str]:
        key = tuple(sorted(locals().items(), key=lambda kv: kv[0]))[:-1]
        key = tuple((k, str(v)) for k, v in key if k != "self")
        if key in self.running:
            return self.running[key]
        port, rest_api_port = free_port(), free_port()
        socket_path = self.folder / f"tf-serving-{port}.sock"
        command = [
            sys.executable, "-m", "zoo.serve.server",
            f"--port={port}",
            f"--rest_api_port={rest_api_port}",
            f"--rest_api_timeout_in_ms={HTTP_REST_TIMEOUT_MS}",
            f"--grpc_socket_path={socket_path}",
        ]  # fmt: skip
        if model_config_file:
            command.append(f"--model_config_file={model_config_file}")
        elif model_path:
            command += [f"--model_name={model_name}", f"--model_base_path={model_path}"]
        else:
            raise ValueError("Both model_config_file and model_path cannot be empty!")
        if model_type == "tflite":
            command.append("--prefer_tflite_model=true")
        if monitoring_config_file:
            command.append(f"--monitoring_config_file={monitoring_config_file}")
        if model_config_file_poll_period is not None:
            command.append(f"--model_config_file_poll_wait_seconds={model_config_file_poll_period}")
        if batching_parameters_file:
            command += [
                "--enable_batching",
                f"--batching_parameters_file={batching_parameters_file}",
            ]
        arguments = ",".join(a for a in (grpc_channel_arguments, "grpc.so_reuseaddr=1") if a)
        command.append(f"--grpc_channel_arguments={arguments}")
        log = open(self.folder / f"server-{port}.log", "wb")  # noqa: SIM115 - closed by the process
        process = subprocess.Popen(command, stderr=pipe or log, stdout=log)
        if wait_for_server_ready:
            wait_for_server_ready_on(port, process)
        started = (process, f"localhost:{port}", f"localhost:{rest_api_port}")
        self.running[key] = started
        return started

    def stop(self) -> None:
        for process, _, _ in self.running.values():
            process.terminate()
        for process, _, _ in self.running.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_for_server_ready_on(port: int, process: subprocess.Popen) -> None:
    """As upstream: until a Predict for a missing model is answered "Servable ..."."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "intentionally_missing_model"
    deadline = time.monotonic() + WAIT_FOR_SERVER_READY_SECS
    with grpc.insecure_channel(f"localhost:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        while time.monotonic() < deadline:
            assert process.poll() is None, "the server exited"
            try:
                stub.Predict(request, 5)
            except grpc.RpcError as error:
                if "Servable" in (error.details() or ""):
                    return
            time.sleep(0.5)
    raise AssertionError(f"the server on {port} was not ready in {WAIT_FOR_SERVER_READY_SECS} s")


def call_rest(url: str, req, max_attempts: int = 60) -> bytes:
    """Upstream's CallREST: the response body, retried while the server comes up."""
    for attempt in range(max_attempts):
        try:
            data = json.dumps(req).encode("utf-8") if req is not None else None
            with urllib.request.urlopen(urllib.request.Request(url, data=data)) as resp:
                return resp.read()
        except Exception:
            if attempt == max_attempts - 1:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def sorted_object(obj):
    """Upstream's SortedObject: nested lists and dicts in a canonical order."""
    if isinstance(obj, dict):
        return sorted((k, sorted_object(v)) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return sorted(sorted_object(x) for x in obj)
    return obj


@pytest.fixture(scope="module")
def testdata(tmp_path_factory):
    return write_testdata(tmp_path_factory.mktemp("testdata"))


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    running = Servers(tmp_path_factory.mktemp("servers"))
    yield running
    running.stop()


@pytest.fixture
def paths(testdata, tmp_path):
    """Upstream's path helpers, and the good model config written from its template."""
    good = tmp_path / "good_model_config.conf"
    good.write_text(
        (testdata / "good_model_config.txt")
        .read_text()
        .replace("${TEST_HALF_PLUS_TWO_DIR}", str(testdata / "saved_model_half_plus_two_cpu"))
        .replace("${TEST_HALF_PLUS_THREE_DIR}", str(testdata / "saved_model_half_plus_three"))
    )
    return {
        "saved_model": testdata / "saved_model_half_plus_two_cpu",
        "tf2": testdata / "saved_model_half_plus_two_tf2_cpu",
        "half_plus_three": testdata / "saved_model_half_plus_three",
        "tflite": testdata / "saved_model_half_plus_two_tflite",
        "tflite_with_sigdef": testdata / "saved_model_half_plus_two_tflite_with_sigdef",
        "good_config": good,
        "bad_config": testdata / "bad_model_config.txt",
        "batching": testdata / "batching_config.txt",
        "monitoring": testdata / "monitoring_config.txt",
        "bad_model": testdata / "bad_half_plus_two",
    }


def model_version(model_path: Path) -> int:
    return int(os.listdir(model_path)[0])


def verify_model_spec(spec, name: str, signature: str, version: int) -> None:
    assert (spec.name, spec.signature_name, spec.version.value) == (name, signature, version)


def verify_predict_request(
    address: str,
    expected_output: float,
    expected_version: int,
    model_name: str = "default",
    specify_output: bool = True,
    batch_input: bool = False,
    signature_name: str = "serving_default",
    rpc_timeout: float = RPC_TIMEOUT,
) -> None:
    """Upstream's VerifyPredictRequest: x = [2.0] as float_val, y checked in float_val."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    request.inputs["x"].dtype = types_pb2.DT_FLOAT
    request.inputs["x"].float_val.append(2.0)
    request.inputs["x"].tensor_shape.dim.add().size = 1
    if batch_input:
        request.inputs["x"].tensor_shape.dim.add().size = 1
    if specify_output:
        request.output_filter.append("y")
    with grpc.insecure_channel(address) as channel:
        result = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, rpc_timeout
        )
    assert "y" in result.outputs
    assert result.outputs["y"].dtype == types_pb2.DT_FLOAT
    assert len(result.outputs["y"].float_val) == 1
    assert result.outputs["y"].float_val[0] == expected_output
    verify_model_spec(result.model_spec, model_name, signature_name, expected_version)


def test_get_model_status(servers, paths):
    address = servers.run("default", paths["saved_model"])[1]
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "default"
    with grpc.insecure_channel(address) as channel:
        result = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
            request, RPC_TIMEOUT
        )
    assert len(result.model_version_status) == 1
    assert result.model_version_status[0].version == 123
    assert result.model_version_status[0].status.error_code == 0


def test_get_model_metadata(servers, paths):
    address = servers.run("default", paths["saved_model"])[1]
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "default"
    request.metadata_field.append("signature_def")
    with grpc.insecure_channel(address) as channel:
        result = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(
            request, RPC_TIMEOUT
        )
    assert result.model_spec.name == "default"
    assert result.model_spec.version.value == model_version(paths["saved_model"])
    assert len(result.metadata) == 1 and "signature_def" in result.metadata


def classify(address: str) -> classification_pb2.ClassificationResponse:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "classify_x_to_y"
    request.input.example_list.examples.add().features.feature["x"].float_list.value.extend([2.0])
    with grpc.insecure_channel(address) as channel:
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).Classify(
            request, RPC_TIMEOUT
        )


@pytest.mark.parametrize(
    "model", ["saved_model", "tf2"], ids=["test_classify", "test_classify_tf2"]
)
def test_classify(servers, paths, model):
    """testClassify (TF1 model) and testClassifyTf2."""
    result = classify(servers.run("default", paths[model])[1])
    assert len(result.result.classifications) == 1
    assert len(result.result.classifications[0].classes) == 1
    assert result.result.classifications[0].classes[0].score == 3.0
    verify_model_spec(result.model_spec, "default", "classify_x_to_y", model_version(paths[model]))


@pytest.mark.parametrize("model", ["saved_model", "tf2"], ids=["test_regress", "test_regress_tf2"])
def test_regress(servers, paths, model):
    """testRegress (TF1 model) and testRegressTf2."""
    address = servers.run("default", paths[model])[1]
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "regress_x_to_y"
    request.input.example_list.examples.add().features.feature["x"].float_list.value.extend([2.0])
    with grpc.insecure_channel(address) as channel:
        result = prediction_service_pb2_grpc.PredictionServiceStub(channel).Regress(
            request, RPC_TIMEOUT
        )
    assert len(result.result.regressions) == 1
    assert result.result.regressions[0].value == 3.0
    verify_model_spec(result.model_spec, "default", "regress_x_to_y", model_version(paths[model]))


@pytest.mark.parametrize(
    "model", ["saved_model", "tf2"], ids=["test_multi_inference", "test_multi_inference_tf2"]
)
def test_multi_inference(servers, paths, model):
    """testMultiInference (TF1 model) and testMultiInferenceTf2."""
    address = servers.run("default", paths[model])[1]
    request = inference_pb2.MultiInferenceRequest()
    request.tasks.add().model_spec.name = "default"
    request.tasks[0].model_spec.signature_name = "regress_x_to_y"
    request.tasks[0].method_name = "tensorflow/serving/regress"
    request.tasks.add().model_spec.name = "default"
    request.tasks[1].model_spec.signature_name = "classify_x_to_y"
    request.tasks[1].method_name = "tensorflow/serving/classify"
    request.input.example_list.examples.add().features.feature["x"].float_list.value.extend([2.0])
    with grpc.insecure_channel(address) as channel:
        result = prediction_service_pb2_grpc.PredictionServiceStub(channel).MultiInference(
            request, RPC_TIMEOUT
        )
    assert len(result.results) == 2
    assert result.results[0].regression_result.regressions[0].value == 3.0
    assert result.results[1].classification_result.classifications[0].classes[0].score == 3.0
    for index in range(2):
        verify_model_spec(
            result.results[index].model_spec,
            request.tasks[index].model_spec.name,
            request.tasks[index].model_spec.signature_name,
            model_version(paths[model]),
        )


def test_predict_saved_model(servers, paths):
    """testPredictSavedModel (upstream's _TestPredict: with and without output_filter)."""
    address = servers.run("default", paths["saved_model"])[1]
    version = model_version(paths["saved_model"])
    verify_predict_request(address, expected_output=3.0, expected_version=version)
    verify_predict_request(
        address, expected_output=3.0, specify_output=False, expected_version=version
    )


def test_predict_saved_model_with_batching(servers, paths):
    """_TestPredict with upstream's batching_config.txt (--enable_batching)."""
    address = servers.run(
        "default", paths["saved_model"], batching_parameters_file=paths["batching"]
    )[1]
    verify_predict_request(address, 3.0, model_version(paths["saved_model"]))


def test_bad_model(servers, paths):
    """_TestBadModel (a helper upstream does not run): an old SessionBundle export, which no
    SavedModel loader reads, never serves; Predict is refused and the status says why."""
    address = servers.run("default", paths["bad_model"], wait_for_server_ready=False)[1]
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=WAIT_FOR_SERVER_READY_SECS)
    with pytest.raises(grpc.RpcError) as caught:
        verify_predict_request(address, 3.0, model_version(paths["bad_model"]), signature_name="")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_good_model_config(servers, paths):
    address = servers.run(None, None, model_config_file=paths["good_config"])[1]
    two, three = model_version(paths["saved_model"]), model_version(paths["half_plus_three"])
    verify_predict_request(address, 3.0, two, model_name="half_plus_two")
    verify_predict_request(address, 3.0, two, model_name="half_plus_two", specify_output=False)
    verify_predict_request(address, 4.0, three, model_name="half_plus_three")
    verify_predict_request(address, 4.0, three, model_name="half_plus_three", specify_output=False)


def test_bad_model_config(servers, paths):
    process = servers.run(
        None, None, model_config_file=paths["bad_config"], pipe=subprocess.PIPE,
        wait_for_server_ready=False,
    )[0]  # fmt: skip
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert b"Error parsing text-format tensorflow.serving.ModelServerConfig" in stderr


BASE_CONFIG = """
model_config_list: {{
  config: {{
    name: "{name}",
    base_path: "{model_path}",
    model_platform: "tensorflow"
  }}
}}
"""


@pytest.mark.parametrize("poll_period", [1, 0], ids=["reload", "zero_poll_period"])
def test_model_config_reload(servers, paths, tmp_path, poll_period):
    """testModelConfigReload (poll every second: the new model is served) and
    testModelConfigReloadWithZeroPollPeriod (never re-read: the old one stays)."""
    config = tmp_path / "model_config.txt"
    config.write_text(BASE_CONFIG.format(name="half_plus_two", model_path=paths["saved_model"]))
    address = servers.run(
        None, None, model_config_file=config, model_config_file_poll_period=poll_period
    )[1]
    two, three = model_version(paths["saved_model"]), model_version(paths["half_plus_three"])
    verify_predict_request(address, 3.0, two, model_name="half_plus_two", specify_output=False)
    config.write_text(
        BASE_CONFIG.format(name="half_plus_three", model_path=paths["half_plus_three"])
    )
    time.sleep(10 if poll_period else poll_period + 1)  # upstream's waits
    if poll_period:
        verify_predict_request(
            address, 4.0, three, model_name="half_plus_three", specify_output=False
        )
    else:
        verify_predict_request(
            address, 3.0, three, model_name="half_plus_two", specify_output=False
        )


def test_good_grpc_channel_args(servers, paths):
    address = servers.run(
        "default", paths["saved_model"],
        grpc_channel_arguments="grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb",
    )[1]  # fmt: skip
    verify_predict_request(
        address, 3.0, model_version(paths["half_plus_three"]), specify_output=False
    )


def rest_url(servers, paths, path: str, **run) -> str:
    host_port = servers.run("default", paths["saved_model"], **run)[2]
    return f"http://{host_port}{path}"


def test_classify_rest(servers, paths):
    url = rest_url(servers, paths, "/v1/models/default:classify")
    reply = call_rest(url, {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]})
    assert json.loads(reply.decode()) == {"results": [[["", 3.0]]]}


def test_regress_rest(servers, paths):
    url = rest_url(servers, paths, "/v1/models/default:regress")
    reply = call_rest(url, {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]})
    assert json.loads(reply.decode()) == {"results": [3.0]}


def test_predict_rest(servers, paths):
    url = rest_url(servers, paths, "/v1/models/default:predict")
    reply = call_rest(url, {"instances": [2.0, 3.0, 4.0]})
    assert json.loads(reply.decode()) == {"predictions": [3.0, 3.5, 4.0]}


def test_predict_columnar_rest(servers, paths):
    url = rest_url(servers, paths, "/v1/models/default:predict")
    reply = call_rest(url, {"inputs": [2.0, 3.0, 4.0]})
    assert json.loads(reply.decode()) == {"outputs": [3.0, 3.5, 4.0]}


def test_get_status_rest(servers, paths):
    reply = call_rest(rest_url(servers, paths, "/v1/models/default"), None)
    assert json.loads(reply.decode()) == {
        "model_version_status": [
            {
                "version": "123",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def tensor_info(name: str, dims: list[int]) -> dict:
    """One TensorInfo as TF Serving's JSON writes it (every field printed)."""
    return {
        "dtype": "DT_STRING" if name == "tf_example:0" else "DT_FLOAT",
        "tensor_shape": {
            "dim": [{"size": str(d), "name": ""} for d in dims],
            "unknown_rank": False,
        },
        "name": name,
    }


def signature(inputs: dict, outputs: dict, method: str) -> dict:
    return {"inputs": inputs, "outputs": outputs, "method_name": method, "defaults": {}}


#: upstream's half_plus_two_model_metadata.json, for the TF1 half_plus_two.
HALF_PLUS_TWO_METADATA = {
    "model_spec": {"name": "default", "signature_name": "", "version": "123"},
    "metadata": {"signature_def": {"signature_def": {
        "regress_x2_to_y3": signature(
            {"inputs": tensor_info("x2:0", [-1, 1])}, {"outputs": tensor_info("y3:0", [-1, 1])},
            "tensorflow/serving/regress"),
        "serving_default": signature(
            {"x": tensor_info("x:0", [-1, 1])}, {"y": tensor_info("y:0", [-1, 1])},
            "tensorflow/serving/predict"),
        "regress_x_to_y": signature(
            {"inputs": tensor_info("tf_example:0", [-1])}, {"outputs": tensor_info("y:0", [-1, 1])},
            "tensorflow/serving/regress"),
        "regress_x_to_y2": signature(
            {"inputs": tensor_info("tf_example:0", [-1])}, {"outputs": tensor_info("y2:0", [-1, 1])},
            "tensorflow/serving/regress"),
        "classify_x_to_y": signature(
            {"inputs": tensor_info("tf_example:0", [-1])}, {"scores": tensor_info("y:0", [-1, 1])},
            "tensorflow/serving/classify"),
    }}},
}  # fmt: skip


def test_get_model_metadata_rest(servers, paths):
    reply = call_rest(rest_url(servers, paths, "/v1/models/default/metadata"), None)
    assert sorted_object(json.loads(reply.decode())) == sorted_object(HALF_PLUS_TWO_METADATA)


def test_prometheus_endpoint(servers, paths):
    url = rest_url(
        servers, paths, "/monitoring/prometheus/metrics", monitoring_config_file=paths["monitoring"]
    )
    assert "# TYPE" in call_rest(url, None).decode("utf-8")


def test_predict_uds(servers, paths, testdata):
    """testPredictUDS: the same Predict over the server's Unix socket (--grpc_socket_path)."""
    process, address, _ = servers.run("default", paths["saved_model"])
    port = address.rsplit(":", 1)[1]
    socket_path = next(
        Path(a.split("=", 1)[1]) for a in process.args if a.startswith("--grpc_socket_path")
    )
    assert socket_path.name == f"tf-serving-{port}.sock"
    verify_predict_request(
        f"unix:{socket_path}", 3.0, model_version(paths["half_plus_three"]), specify_output=False
    )


@pytest.mark.parametrize(
    "model", ["tflite", "tflite_with_sigdef"],
    ids=["test_predict_on_tf_lite", "test_predict_with_signature_def_on_tf_lite"],
)  # fmt: skip
def test_predict_on_tf_lite(servers, paths, model):
    """testPredictOnTfLite and testPredictWithSignatureDefOnTfLite (--prefer_tflite_model)."""
    address = servers.run("default", paths[model], model_type="tflite")[1]
    verify_predict_request(address, 3.0, model_version(paths["tflite"]), specify_output=False)


def saved_and_served(servers, base: Path):
    return servers.run("default", base)[1], model_version(base)


def test_tf_saved_model_save(servers, tmp_path):
    base = tmp_path / "tf_saved_model_save"
    root = tf.train.Checkpoint()
    root.v1 = tf.Variable(3.0)
    root.v2 = tf.Variable(2.0)
    root.f = tf.function(lambda x: {"y": root.v1 * root.v2 * x})
    to_save = root.f.get_concrete_function(tf.TensorSpec(None, tf.float32))
    tf.saved_model.save(root, str(base / "00000123"), to_save)
    address, version = saved_and_served(servers, base)
    verify_predict_request(address, 12.0, version, specify_output=False)


def test_tf_saved_model_save_multiple_signatures(servers, tmp_path):
    base = tmp_path / "tf_saved_model_save"
    root = tf.train.Checkpoint()
    root.f = tf.function(lambda x: {"y": 1.0}, input_signature=[tf.TensorSpec(None, tf.float32)])
    root.g = tf.function(lambda x: {"y": 2.0}, input_signature=[tf.TensorSpec(None, tf.float32)])
    tf.saved_model.save(
        root, str(base / "00000123"),
        signatures={"serving_default": root.f, "custom_signature_key": root.g},
    )  # fmt: skip
    address, version = saved_and_served(servers, base)
    verify_predict_request(address, 2.0, version, signature_name="custom_signature_key")
    verify_predict_request(address, 1.0, version)


#: Upstream's Keras models, built with tf.keras as TF Serving's test builds them: Keras 2
#: (the tf_keras package today). Keras 3 names a Sequential model's input "inputs", not
#: "x", so the same script under Keras 3 makes a model whose own signature differs.
SEQUENTIAL = """
import sys
import tensorflow as tf
import tf_keras as keras

if sys.argv[2] == "distrat":  # upstream's SetVirtualCpus(2), then a MirroredStrategy
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    scope = tf.distribute.MirroredStrategy(devices=("/cpu:0", "/cpu:1")).scope()
else:
    scope = tf.name_scope("plain")
with scope:
    model = keras.models.Sequential()
    model.add(keras.layers.Input(dtype="float32", shape=(1,), name="x"))
    if sys.argv[2] == "distrat":
        model.add(keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="zeros"))
    model.add(keras.layers.Lambda(lambda x: x, name="y"))
tf.saved_model.save(model, sys.argv[1])
"""


def save_sequential(export_path: Path, kind: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SEQUENTIAL, str(export_path), kind],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


def test_sequential_keras_saved_model_save(servers, tmp_path):
    base = tmp_path / "keras_sequential_saved_model_save"
    save_sequential(base / "00000123", "plain")
    address, version = saved_and_served(servers, base)
    verify_predict_request(address, 2.0, version, batch_input=True, specify_output=False)


def test_distrat_sequential_keras_saved_model_save(servers, tmp_path):
    base = tmp_path / "keras_distrat_saved_model_save"
    save_sequential(base / "00000123", "distrat")
    address, version = saved_and_served(servers, base)
    verify_predict_request(address, 2.0, version, batch_input=True, specify_output=False)


def test_counter_model_keeps_state_across_predicts(servers, testdata):
    """saved_model_counter (export_counter.py): signatures without inputs, state kept in
    the version's session, as TF Serving's session keeps it."""
    address = servers.run("default", testdata / "saved_model_counter")[1]

    def counter(signature: str, **inputs) -> float:
        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = "default", signature
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=tf.float32))
        with grpc.insecure_channel(address) as channel:
            reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, 20)
        return float(tf.make_ndarray(reply.outputs["output"]))

    assert counter("reset_counter") == 0.0
    assert counter("incr_counter") == 1.0
    assert counter("incr_counter_by", delta=2.5) == 3.5
    assert counter("get_counter") == 3.5


def test_two_versions_serve_the_latest_and_a_specific_one(servers, testdata):
    """saved_model_half_plus_two_2_versions: 00000124 is served, 00000123 is not loaded."""
    base = testdata / "saved_model_half_plus_two_2_versions"
    address = servers.run("default", base)[1]
    verify_predict_request(address, 3.0, 124)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "default"
    with grpc.insecure_channel(address) as channel:
        states = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, 20)
    assert [s.version for s in states.model_version_status] == [124]


def test_profiler_service_with_valid_trace_request(servers, paths, tmp_path):
    """Upstream sends REST predicts while TF's profiler client traces the gRPC address."""
    from tensorflow.python.profiler import profiler_client

    _, grpc_address, rest_address = servers.run("default", paths["saved_model"])
    url = f"http://{rest_address}/v1/models/default:predict"
    logdir = tmp_path / "logs"
    logdir.mkdir()
    for _ in range(3):
        call_rest(url, {"instances": [2.0, 3.0, 4.0]})
    profiler_client.trace(grpc_address, str(logdir), 1000, "", 10)
    assert any(logdir.rglob("*.xplane.pb"))


def test_tf_text(servers, testdata):
    """A model with TF Text's ops: the server registers them, as TF Serving's binary has them."""
    model_path = testdata / "tf_text_regression"
    address = servers.run("default", model_path)[1]
    verify_predict_request(address, 3.0, model_version(model_path), rpc_timeout=600)
