"""The embedded server in this process, on TF Serving's own tiny test models (TF1 and TF2
half_plus_two in zero-padded version folders): the quick loop's check that the server,
its loader, both protocols and the metrics work. Tests with the server in another process,
as users run it, are in test_serve.py and test_tfserving_upstream.py."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_status_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tfserving_testdata import VERSION, example, half_plus_two_tf1, half_plus_two_tf2

from helpers import free_port
from zoo.serve.config import ModelEntry, write_model_config
from zoo.serve.options import ServerOptions
from zoo.serve.server.app import EmbeddedServer
from zoo.serve.server_files import write_server_files


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("embedded")
    half_plus_two_tf1(root / "tf1" / VERSION)
    half_plus_two_tf2(root / "tf2" / VERSION)
    entries = [ModelEntry("tf1", root / "tf1"), ModelEntry("tf2", root / "tf2")]
    options = ServerOptions(
        port=free_port(),
        rest_api_port=free_port(),
        model_config_file=str(write_model_config(root / "models.config", entries)),
    )
    write_server_files(options, root, batching=True, metrics=True)
    running = EmbeddedServer(options)
    running.start()
    yield running
    running.stop(grace=1)


@pytest.fixture
def stub(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def predict(stub, model, **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return stub.Predict(request, timeout=30)


@pytest.mark.parametrize("model", ["tf1", "tf2"])
def test_predict_runs_the_graph_and_names_the_zero_padded_version(stub, model):
    reply = predict(stub, model, x=np.array([1.0], "float32"))
    assert reply.model_spec.version.value == 123
    assert reply.model_spec.signature_name == "serving_default"
    assert tf.make_ndarray(reply.outputs["y"]).tolist() == [2.5]


def test_shapes_are_the_graphs_to_refuse_with_tensorflows_message(stub):
    """TF1's x is [?, 1]: a batch of 3 works; a string where floats go is refused by type."""
    reply = predict(stub, "tf1", x=np.array([[1.0], [2.0], [3.0]], "float32"))
    assert tf.make_ndarray(reply.outputs["y"]).ravel().tolist() == [2.5, 3.0, 3.5]
    with pytest.raises(grpc.RpcError) as caught:
        predict(stub, "tf2", x=np.array([1, 2], "int64"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "Expects arg[0] to be float but int64 is provided"


@pytest.mark.parametrize("model", ["tf1", "tf2"])
def test_classify_parses_tf_examples_in_the_graph(stub, model):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name, request.model_spec.signature_name = model, "classify_x_to_y"
    request.input.example_list.examples.add().CopyFrom(example(x=2.0))
    reply = stub.Classify(request, timeout=30)
    (result,) = reply.result.classifications
    assert [(c.label, c.score) for c in result.classes] == [("", 3.0)]


def test_rest_status_and_prometheus_metrics(server, stub):
    predict(stub, "tf2", x=np.array([1.0], "float32"))
    base = f"http://127.0.0.1:{server.options.rest_api_port}"
    with urllib.request.urlopen(f"{base}/v1/models/tf1") as reply:
        assert json.loads(reply.read()) == {
            "model_version_status": [
                {"version": "123", "state": "AVAILABLE",
                 "status": {"error_code": "OK", "error_message": ""}}
            ]
        }  # fmt: skip
    body = json.dumps({"instances": [1.0]}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{base}/v1/models/tf2:predict", body)) as r:
        assert json.loads(r.read()) == {"predictions": [2.5]}
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{base}/v1/models/tf2/versions/99999999999999999999")
    assert caught.value.code == 400
    assert json.loads(caught.value.read()) == {
        "error": "Failed to convert version: 99999999999999999999 to numeric."
    }
    with urllib.request.urlopen(f"{base}/monitoring/prometheus/metrics") as reply:
        text = reply.read().decode()
    labels = 'model_name="tf2",API="Predict"'
    assert f'{labels},entrypoint="GRPC",le="+Inf"}}' in text
    assert f'{labels},entrypoint="REST",le="+Inf"}}' in text
    assert ":tensorflow:serving:batching_session:processed_batch_size_count" in text


def test_model_status_over_grpc(server):
    from tensorflow_serving.apis import model_service_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "tf1"
        reply = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request)
    (status,) = reply.model_version_status
    assert status.version == 123
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


def test_the_client_retries_unavailable_with_grpcs_retry_policy(server):
    """A server that comes up half a second after the call began: gRPC's retry policy
    (backoff 0.2 s, doubling) carries the call through; without retries it fails at once."""
    import threading
    import time

    from zoo.serve.client import ServingClient

    port = free_port()
    options = ServerOptions(port=port, model_config_file=server.options.model_config_file)
    started_servers = []

    def start_late():
        started_servers.append(EmbeddedServer(options))
        started_servers[0].start()

    with ServingClient(f"127.0.0.1:{port}", retries=0, timeout=10) as impatient:
        with pytest.raises(grpc.RpcError) as caught:
            impatient.status("tf1")
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    starter = threading.Timer(0.5, start_late)
    started = time.monotonic()
    starter.start()
    try:
        with ServingClient(f"127.0.0.1:{port}", retries=4, timeout=10) as patient:
            assert patient.status("tf1") == {123: "AVAILABLE"}
        assert time.monotonic() - started >= 0.5
    finally:
        starter.join()
        started_servers[0].stop(grace=1)


def test_stopping_answers_every_request_waiting_for_a_batch(server):
    """A batch that would wait 30 s to fill: stopping the server answers the waiting
    request at once (UNAVAILABLE) instead of leaving it to hang."""
    import threading
    import time

    from zoo.serve.server.batching import STOPPED, Batcher
    from zoo.serve.server_files import BatchingOptions

    batcher = Batcher(server.manager, BatchingOptions(64, 30_000_000, 1, 10))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tf2"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0], "float32")))
    outcome = []
    waiting = threading.Thread(target=lambda: outcome.append(_answer(batcher, request)))
    waiting.start()
    time.sleep(0.5)  # queued, its batch far from due
    started = time.monotonic()
    batcher.stop()
    waiting.join(timeout=10)
    assert not waiting.is_alive() and time.monotonic() - started < 5
    assert outcome == [(grpc.StatusCode.UNAVAILABLE, STOPPED)]


def _answer(batcher, request):
    from zoo.serve.server.status import ServingError

    try:
        return batcher.predict(request)
    except ServingError as exc:
        return exc.code, exc.message
