"""Serving, end to end: an exported model on the embedded server in another process, clients
over gRPC (on TF Serving's own stubs) and REST, and TF Serving's answers to mistakes."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

import zoo
from helpers import CLASSES, free_port
from zoo.data.synth import write_synthetic_dataset
from zoo.serve.client import TLS, ServingClient
from zoo.serve.config import ModelEntry, model_config, read_model_config, write_model_config
from zoo.serve.engines.embedded import EmbeddedEngine
from zoo.serve.options import ServerOptions, parse_flags
from zoo.serve.server_files import write_server_files


@pytest.fixture(scope="module")
def exported(shared_run, shared_export):
    """The suite's shared run, exported as models/galaxies/1: (root, data, run)."""
    return shared_run.root, shared_run.data, shared_run.run


def start_server(
    root: Path, models: list[ModelEntry], **flags
) -> tuple[EmbeddedEngine, ServerOptions]:
    folder = root / f"server-{free_port()}"
    folder.mkdir()
    batching = flags.pop("batching", False)
    batch = flags.pop("batch", None)
    options = ServerOptions(
        port=free_port(),
        rest_api_port=free_port(),
        model_config_file=str(write_model_config(folder / "models.config", models)),
        enable_grpc_healthcheck_service=True,
        enable_model_management=True,  # the reload tests' HandleReloadConfigRequest
        **flags,
    )
    write_server_files(options, folder, batching=batching, metrics=True, batch=batch)
    engine = EmbeddedEngine(options, models)
    engine.start(log=folder / "server.log")
    engine.wait_ready(timeout=180)
    return engine, options


@pytest.fixture(scope="module")
def server(exported):
    root, _, _ = exported
    engine, options = start_server(root, [ModelEntry("galaxies", root / "models" / "galaxies")])
    yield options
    engine.stop()
    assert engine.process.returncode == 0  # SIGTERM: a clean, drained exit


@pytest.fixture
def client(server):
    with ServingClient(f"127.0.0.1:{server.port}", retries=0) as connected:
        yield connected


def images(data: Path, count: int = 4) -> list[bytes]:
    return [p.read_bytes() for p in sorted(data.rglob("*.png"))[:count]]


def raw_predict(channel: grpc.Channel, blobs: list[bytes]) -> Any:
    """Predict on TF Serving's generated stub alone; the response's output TensorProtos."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "galaxies"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(blobs))
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    return stub.Predict(request, timeout=60).outputs


@pytest.mark.subprocess
def test_predict_over_grpc_equals_the_model_in_process(exported, client):
    root, data, _ = exported
    blobs = images(data)
    served = client.predict("galaxies", {"images": blobs})
    assert (
        client.last_spec.version.value == 1 and client.last_spec.signature_name == "serving_default"
    )
    local = tf.saved_model.load(str(root / "models" / "galaxies" / "1"))
    expected = local.signatures["serving_default"](images=tf.constant(blobs))
    np.testing.assert_allclose(
        served["probabilities"], expected["probabilities"].numpy(), atol=1e-6
    )
    assert served["top_labels"].tolist() == expected["top_labels"].numpy().tolist()
    filtered = client.predict("galaxies", {"images": blobs[:1]}, output_filter=["top_labels"])
    assert set(filtered) == {"top_labels"}
    embedding = client.predict("galaxies", {"images": blobs}, output_filter=["features"])
    assert set(embedding) == {"features"} and embedding["features"].shape[0] == len(blobs)
    np.testing.assert_allclose(embedding["features"], expected["features"].numpy(), atol=1e-5)
    # As TF Serving answers by default: values in each dtype's repeated field, which
    # clients written against its protos alone read directly.
    raw = raw_predict(client.channel, blobs)
    np.testing.assert_allclose(
        np.reshape(raw["probabilities"].float_val, (len(blobs), -1)),
        expected["probabilities"].numpy(),
        atol=1e-6,
    )
    assert list(raw["top_indices"].int_val) == expected["top_indices"].numpy().ravel().tolist()
    assert not raw["probabilities"].tensor_content and not raw["top_indices"].tensor_content


@pytest.mark.subprocess
def test_classify_and_metadata_answer_as_tf_serving_does(exported, client):
    _, data, _ = exported
    blob = images(data, 1)[0]
    example = tf.train.Example(
        features=tf.train.Features(
            feature={"image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[blob]))}
        )
    )
    rows = client.classify("galaxies", [example.SerializeToString()])
    top = client.predict("galaxies", {"images": [blob]})
    assert [label for label, _ in rows[0]] == [b.decode() for b in top["top_labels"][0]]
    assert [score for _, score in rows[0]] == pytest.approx(top["top_scores"][0].tolist(), abs=1e-6)
    signatures = client.metadata("galaxies")  # TF2's init op is listed too, as TF Serving does
    assert set(signatures) == {
        "serving_default",
        "predict_images",
        "classify",
        "__saved_model_init_op",
    }
    assert signatures["classify"].method_name == "tensorflow/serving/classify"


def call(client, method, request):
    with pytest.raises(grpc.RpcError) as caught:
        method(request, timeout=30)
    return caught.value.code(), caught.value.details()


def predict_request(name="galaxies", signature="", version=None, label=None, **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


@pytest.mark.subprocess
def test_mistakes_get_tf_servings_codes_and_messages(exported, client):
    _, data, _ = exported
    blob = images(data, 1)
    stub, models = client.predictions.Predict, client.models
    invalid, not_found = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
    cases = [
        (predict_pb2.PredictRequest(), (invalid, "Missing ModelSpec")),
        (predict_request(name="", images=blob), (invalid, "ModelSpec has no name specified.")),
        (predict_request(name="nope", images=blob), (not_found, "Servable not found for request: Latest(nope)")),
        (predict_request(version=7, images=blob), (not_found, "Servable not found for request: Specific(galaxies, 7)")),
        (predict_request(label="stable", images=blob), (invalid, "Unrecognized servable version label: stable")),
        (predict_request(signature="nope", images=blob), (grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "nope" not found.')),
        (predict_request(), (invalid, "input size does not match signature: 0!=1 len({}) != len({images}). Sent extra: {}. Missing but required: {images}.")),
        (predict_request(images=blob, extra=blob), (invalid, "input size does not match signature: 2!=1 len({extra,images}) != len({images}). Sent extra: {extra}. Missing but required: {}.")),
        (predict_request(other=blob), (invalid, "Signature input alias: images(feed name: serving_default_images:0) not found in request")),
        (predict_request(images=np.ones((1, 48, 48, 3), "int64"), signature="predict_images"), (invalid, "Expects arg[0] to be float but int64 is provided")),
        (predict_request(images=np.ones((1, 48, 48, 5), "float32"), signature="predict_images"), (invalid, "input depth must be evenly divisible by filter depth: 5 vs 3")),
        (predict_request(images=[b"not an image"]), (invalid, "Unknown image file format")),
    ]  # fmt: skip
    for request, (code, message) in cases:
        got_code, details = call(client, stub, request)
        assert got_code == code and details.startswith(message), (request, got_code, details)
    filtered = predict_request(images=blob)
    filtered.output_filter.append("logits")
    assert call(client, stub, filtered) == (
        invalid,
        "output tensor alias not found in signature: logits Outputs expected to be in the set "
        "{features,probabilities,top_indices,top_labels,top_scores}.",
    )
    wrong = classification_pb2.ClassificationRequest()
    wrong.model_spec.name, wrong.model_spec.signature_name = "galaxies", "nope"
    wrong.input.example_list.examples.add()
    assert call(client, client.predictions.Classify, wrong) == (
        invalid,
        "No signature was found with the name: nope",
    )
    empty = classification_pb2.ClassificationRequest()
    empty.model_spec.name, empty.model_spec.signature_name = "galaxies", "classify"
    assert call(client, client.predictions.Classify, empty) == (invalid, "Input is empty.")
    metadata = get_model_metadata_pb2.GetModelMetadataRequest()
    metadata.model_spec.name = "galaxies"
    assert call(client, client.predictions.GetModelMetadata, metadata) == (
        invalid, "GetModelMetadataRequest must specify at least one metadata_field",
    )  # fmt: skip
    status = get_model_status_pb2.GetModelStatusRequest()
    status.model_spec.name = "nope"
    assert call(client, models.GetModelStatus, status) == (
        not_found,
        "Could not find any versions of model nope",
    )
    assert client.status("galaxies") == {1: "AVAILABLE"}  # the server is still up


def rest(options, path, body=None):
    url = f"http://127.0.0.1:{options.rest_api_port}{path}"
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.subprocess
def test_rest_speaks_tf_servings_json(exported, server, client):
    _, data, _ = exported
    blobs = images(data, 2)
    instances = [{"b64": base64.b64encode(b).decode()} for b in blobs]
    status, reply = rest(server, "/v1/models/galaxies:predict", {"instances": instances})
    assert status == 200
    expected = client.predict("galaxies", {"images": blobs})
    assert [row["top_labels"] for row in reply["predictions"]] == [
        [b.decode() for b in r] for r in expected["top_labels"]
    ]
    np.testing.assert_allclose(
        [row["probabilities"] for row in reply["predictions"]], expected["probabilities"], atol=1e-6
    )
    status, columnar = rest(
        server, "/v1/models/galaxies/versions/1:predict", {"inputs": instances[:1]}
    )
    assert status == 200 and set(columnar["outputs"]) == {
        "features",
        "probabilities",
        "top_indices",
        "top_labels",
        "top_scores",
    }
    assert rest(server, "/v1/models/galaxies") == (
        200, {"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]},
    )  # fmt: skip
    status, metadata = rest(server, "/v1/models/galaxies/metadata")
    assert status == 200 and metadata["model_spec"]["name"] == "galaxies"
    assert set(metadata["metadata"]["signature_def"]["signature_def"]) == {
        "serving_default",
        "predict_images",
        "classify",
        "__saved_model_init_op",
    }
    example = {"image/encoded": {"b64": instances[0]["b64"]}}
    status, classified = rest(
        server,
        "/v1/models/galaxies:classify",
        {"signature_name": "classify", "examples": [example]},
    )
    assert status == 200 and [label for label, _ in classified["results"][0]] == [
        b.decode() for b in expected["top_labels"][0]
    ]
    assert rest(server, "/v1/models/nope:predict", {"instances": instances}) == (
        404,
        {"error": "Servable not found for request: Latest(nope)"},
    )
    assert rest(server, "/v1/models/galaxies:predict", {"instance": instances}) == (
        400,
        {"error": "Missing 'inputs' or 'instances' key"},
    )
    with urllib.request.urlopen(
        f"http://127.0.0.1:{server.rest_api_port}/monitoring/prometheus/metrics"
    ) as reply:
        text = reply.read().decode()
    assert ':tensorflow:serving:request_count{model_name="galaxies",status="OK"}' in text
    # a model that is not served is counted without its name: names cannot grow the list
    assert ':tensorflow:serving:request_count{model_name="",status="NOT_FOUND"}' in text
    assert "nope" not in text
    assert (
        ':tensorflow:serving:request_latency_bucket{model_name="galaxies",API="Predict",entrypoint="REST",le="+Inf"}'
        in text
    )


@pytest.mark.subprocess
def test_sixteen_clients_a_hundred_requests_each_and_a_hot_swap(exported, tmp_path):
    """A new version lands while clients run: none fails, and later replies name it.

    Each client sends at least 100 requests, and goes on until version 2 has answered
    (loading it takes a poll and a warmup, which may outlast 1,600 fast requests)."""
    root, data, _ = exported
    base = tmp_path / "models" / "galaxies"
    shutil.copytree(root / "models" / "galaxies" / "1", base / "1")
    engine, options = start_server(tmp_path, [ModelEntry("galaxies", base)])
    blob = images(data, 1)
    errors, versions = [], []
    swapped = threading.Event()

    def work():
        with ServingClient(f"127.0.0.1:{options.port}", retries=0) as one:
            sent = 0
            while sent < 100 or not swapped.is_set():
                try:
                    one.predict("galaxies", {"images": blob})
                    versions.append(one.last_spec.version.value)
                except grpc.RpcError as exc:
                    errors.append(exc.details())
                sent += 1

    try:
        threads = [threading.Thread(target=work) for _ in range(16)]
        for thread in threads:
            thread.start()
        while len(versions) < 200:
            time.sleep(0.01)
        shutil.copytree(base / "1", tmp_path / "staging")
        (tmp_path / "staging").rename(
            base / "2"
        )  # a version appears whole, as zoo export writes it
        deadline = time.monotonic() + 120
        while 2 not in versions and time.monotonic() < deadline and not errors:
            time.sleep(0.05)
        swapped.set()
        for thread in threads:
            thread.join()
        assert errors == [] and len(versions) >= 1600
        assert versions[0] == 1 and 2 in versions
        with ServingClient(f"127.0.0.1:{options.port}") as late:
            late.predict("galaxies", {"images": blob})
            assert late.last_spec.version.value == 2
            assert late.status("galaxies") == {2: "AVAILABLE", 1: "END"}
    finally:
        engine.stop()


@pytest.mark.subprocess
def test_a_broken_version_or_failing_warmup_does_not_take_the_old_one_down(exported, tmp_path):
    root, data, _ = exported
    base = tmp_path / "models" / "galaxies"
    shutil.copytree(root / "models" / "galaxies" / "1", base / "1")
    engine, options = start_server(
        tmp_path, [ModelEntry("galaxies", base)], max_num_load_retries=0
    )  # TF Serving's flag: no second try, so each bad version ends at once
    try:
        with ServingClient(f"127.0.0.1:{options.port}") as one:

            def ended(version):
                deadline = time.monotonic() + 120
                while one.status("galaxies").get(version) != "END":
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
                request = get_model_status_pb2.GetModelStatusRequest()
                request.model_spec.name = "galaxies"
                states = one.models.GetModelStatus(request).model_version_status
                return {s.version: s for s in states}

            shutil.copytree(base / "1", tmp_path / "broken")
            (tmp_path / "broken" / "saved_model.pb").write_bytes(b"not a saved model")
            (tmp_path / "broken").rename(base / "2")
            states = ended(2)
            assert states[1].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
            assert "Cannot parse file" in states[2].status.error_message
            shutil.copytree(base / "1", tmp_path / "cold")
            _write_bad_warmup(tmp_path / "cold" / "assets.extra" / "tf_serving_warmup_requests")
            (tmp_path / "cold").rename(base / "3")
            states = ended(3)
            assert 'Serving signature key "missing" not found.' in states[3].status.error_message
            assert states[1].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
            one.predict("galaxies", {"images": images(data, 1)})
            assert one.last_spec.version.value == 1  # the old version kept serving
    finally:
        engine.stop()


def _write_bad_warmup(path: Path) -> None:
    from tensorflow_serving.apis import prediction_log_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "galaxies", "missing"
    log = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)
    )
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(log.SerializeToString())


@pytest.mark.subprocess
def test_batching_answers_every_client_and_a_full_queue_is_unavailable(exported, tmp_path):
    from zoo.serve.server.batching import QUEUE_FULL
    from zoo.serve.server_files import BatchingOptions

    root, data, _ = exported
    base = root / "models" / "galaxies"
    blob = images(data, 1)
    for batch, expect_full in (
        (BatchingOptions(8, 5000, 2, 10), False),
        (BatchingOptions(1, 0, 1, 1), True),
    ):
        engine, options = start_server(
            tmp_path, [ModelEntry("galaxies", base)], batching=True, batch=batch
        )
        outcomes = []

        def work(options=options, outcomes=outcomes):
            with ServingClient(f"127.0.0.1:{options.port}", retries=0) as one:
                for _ in range(10):
                    try:
                        outcomes.append(
                            one.predict("galaxies", {"images": blob})["top_labels"][0].tolist()
                        )
                    except grpc.RpcError as exc:
                        outcomes.append((exc.code(), exc.details()))

        try:
            threads = [threading.Thread(target=work) for _ in range(16)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            with urllib.request.urlopen(
                f"http://127.0.0.1:{options.rest_api_port}/monitoring/prometheus/metrics"
            ) as reply:
                sizes = batch_sizes(reply.read().decode())
        finally:
            engine.stop()
        answers = [o for o in outcomes if isinstance(o, list)]
        refused = [o for o in outcomes if not isinstance(o, list)]
        assert len(outcomes) == 160 and all(a == answers[0] for a in answers)
        if expect_full:
            assert refused and all(r == (grpc.StatusCode.UNAVAILABLE, QUEUE_FULL) for r in refused)
            assert sizes["count"] == len(answers) and sizes["larger_than_1"] == 0
        else:
            assert refused == []
            # the batches that ran: 160 images in fewer than 160 runs, some of several images
            assert sizes["sum"] == 160 and sizes["larger_than_1"] > 0, sizes


def batch_sizes(exposition: str) -> dict[str, float]:
    """The processed_batch_size histogram: batches run, images in them, batches of 2+."""
    name = ":tensorflow:serving:batching_session:processed_batch_size"
    values = dict(line.rsplit(" ", 1) for line in exposition.splitlines() if line.startswith(name))
    count = float(values[f"{name}_count"])
    return {
        "count": count,
        "sum": float(values[f"{name}_sum"]),
        "larger_than_1": count - float(values[f'{name}_bucket{{le="1"}}']),
    }


@pytest.mark.subprocess
def test_reload_config_adds_and_removes_models(exported, server, client):
    root, _, _ = exported
    second = ModelEntry("galaxies2", root / "models" / "galaxies")
    request = model_management_pb2.ReloadConfigRequest()
    request.config.CopyFrom(
        model_config([ModelEntry("galaxies", root / "models" / "galaxies"), second])
    )
    assert client.models.HandleReloadConfigRequest(request, timeout=120).status.error_code == 0
    assert client.status("galaxies2") == {1: "AVAILABLE"}
    request.config.CopyFrom(model_config([ModelEntry("galaxies", root / "models" / "galaxies")]))
    client.models.HandleReloadConfigRequest(request, timeout=120)
    with pytest.raises(grpc.RpcError) as caught:
        client.status("galaxies2")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.subprocess
def test_reload_config_answers_a_failed_load_at_once_and_keeps_the_others(
    exported, server, client, tmp_path
):
    """A new model whose version does not load: the answer comes as soon as the load
    failed, with its error (not after the load timeout), and the model kept serves on;
    a base path that does not exist is refused outright, as TF Serving's source does."""
    root, data, _ = exported
    kept = ModelEntry("galaxies", root / "models" / "galaxies")
    broken = tmp_path / "broken"
    shutil.copytree(root / "models" / "galaxies" / "1", broken / "1")
    (broken / "1" / "saved_model.pb").write_bytes(b"not a saved model")
    request = model_management_pb2.ReloadConfigRequest()
    request.config.CopyFrom(model_config([kept, ModelEntry("broken", broken)]))
    started = time.monotonic()
    code, details = call(client, client.models.HandleReloadConfigRequest, request)
    assert code == grpc.StatusCode.UNKNOWN and "Cannot parse file" in details
    assert time.monotonic() - started < 30
    assert client.status("galaxies") == {1: "AVAILABLE"}
    client.predict("galaxies", {"images": images(data, 1)})  # it never stopped serving
    missing = ModelEntry("missing", tmp_path / "nowhere")
    request.config.CopyFrom(model_config([kept, missing]))
    assert call(client, client.models.HandleReloadConfigRequest, request) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        f"Could not find base path {(tmp_path / 'nowhere').resolve()} for servable missing",
    )
    request.config.CopyFrom(model_config([kept]))
    client.models.HandleReloadConfigRequest(request, timeout=120)


@pytest.mark.subprocess
def test_zoo_serve_serves_the_users_config_file_and_its_edits(exported, tmp_path):
    """`zoo serve CONFIG` gives the server the file itself: a model added to it is served
    within the poll interval, without a restart. (gRPC alone: zoo serve then waits for the
    models over gRPC, not REST.)"""
    from helpers import ZOO_SCRIPT

    root, _, _ = exported
    config = tmp_path / "models.config"
    write_model_config(config, [ModelEntry("galaxies", root / "models" / "galaxies")])
    port = free_port()
    serving = subprocess.Popen(
        [str(ZOO_SCRIPT), "serve", str(config), "--port", str(port), "--rest-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert serving.stdout.readline().startswith("serving on grpc://")
        write_model_config(
            config,
            [ModelEntry("galaxies", root / "models" / "galaxies"),
             ModelEntry("again", root / "models" / "galaxies")],
        )  # fmt: skip
        with ServingClient(f"127.0.0.1:{port}", retries=0) as one:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if one.status("again") == {1: "AVAILABLE"}:
                        break
                except grpc.RpcError:
                    pass
                assert time.monotonic() < deadline, "the edit was not served"
                time.sleep(0.5)
            assert one.status("galaxies") == {1: "AVAILABLE"}
    finally:
        serving.send_signal(__import__("signal").SIGINT)
        serving.wait(timeout=60)


def make_certificates(folder: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, with openssl."""
    folder.mkdir()

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=zoo test CA",
    )
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
        )
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        )
    return {
        name: folder / name
        for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")
    }


@pytest.mark.subprocess
@pytest.mark.parametrize("mutual", [False, True])
def test_tls_and_mutual_tls(exported, tmp_path, mutual):
    from google.protobuf import text_format

    from zoo.serve.protos import SSLConfig

    root, data, _ = exported
    files = make_certificates(tmp_path / "certs")
    ssl = SSLConfig(
        server_key=files["server.key"].read_text(), server_cert=files["server.pem"].read_text(),
        custom_ca=files["ca.pem"].read_text() if mutual else "", client_verify=mutual,
    )  # fmt: skip
    (tmp_path / "ssl.config").write_text(text_format.MessageToString(ssl))
    entry = ModelEntry("galaxies", root / "models" / "galaxies")
    folder = tmp_path / "server"
    folder.mkdir()
    options = ServerOptions(
        port=free_port(), model_config_file=str(write_model_config(folder / "m.config", [entry])),
        ssl_config_file=str(tmp_path / "ssl.config"),
    )  # fmt: skip
    engine = EmbeddedEngine(options, [entry])
    engine.start(log=folder / "server.log")
    try:
        address = f"127.0.0.1:{options.port}"
        pair = (files["client.pem"], files["client.key"]) if mutual else (None, None)
        tls = TLS(files["ca.pem"], *pair)
        deadline = time.monotonic() + 120
        while True:
            try:
                with ServingClient(address, tls=tls, retries=0) as secure:
                    answer = secure.predict("galaxies", {"images": images(data, 1)})
                break
            except grpc.RpcError:
                assert time.monotonic() < deadline
                time.sleep(0.5)
        assert answer["probabilities"].shape == (1, 3)
        refused = [TLS(files["ca.pem"])] if mutual else []
        with ServingClient(address, retries=0) as plain:  # no TLS at all
            with pytest.raises(grpc.RpcError):
                plain.status("galaxies")
        for without_certificate in refused:
            with ServingClient(address, tls=without_certificate, retries=0) as anonymous:
                with pytest.raises(grpc.RpcError):
                    anonymous.status("galaxies")
    finally:
        engine.stop()


def test_flags_are_tensorflow_model_servers_and_unknown_ones_are_refused(tmp_path):
    config = write_model_config(
        tmp_path / "m.config", [ModelEntry("m", tmp_path, labels={"stable": 1})]
    )
    options = parse_flags(
        [
            "--port=9000",
            f"--model_config_file={config}",
            "--enable_batching",
            "--rest_api_port",
            "9001",
        ]
    )
    assert (options.port, options.rest_api_port, options.enable_batching) == (9000, 9001, True)
    assert read_model_config(config)[0].labels == {"stable": 1}
    with pytest.raises(
        zoo.ConfigError,
        match="--tensorflow_session_parallelism: the embedded server does not implement",
    ):
        parse_flags([f"--model_config_file={config}", "--tensorflow_session_parallelism=2"])
    with pytest.raises(zoo.ConfigError, match="--tensorflow_intra_op_parallelism takes 0"):
        parse_flags([f"--model_config_file={config}", "--tensorflow_intra_op_parallelism=-1"])
    with pytest.raises(
        zoo.ConfigError, match="model_base_path and server_options.model_config_file are empty"
    ):
        parse_flags(["--port=9000"])


def test_a_bad_config_or_batching_file_is_one_line_and_a_nonzero_exit(tmp_path):
    """Checked before TensorFlow loads: one line, TF Serving's words, exit status 255; a
    batching field the embedded server does not implement is refused by name."""
    bad = tmp_path / "bad_model_config.txt"
    bad.write_text("improperly formatted file")
    batching = tmp_path / "batching.txt"
    batching.write_text("max_batch_size { value: 8 }\nallowed_batch_sizes: 8\n")
    for flags, message in (
        ([f"--model_config_file={bad}"], "Error parsing text-format tensorflow.serving.ModelServerConfig"),
        ([f"--model_base_path={tmp_path}", "--enable_batching", f"--batching_parameters_file={batching}"],
         "the embedded server does not implement allowed_batch_sizes"),
    ):  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "zoo.serve.server", *flags],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 255 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


STAND_IN = """#!{python}
import json, os, sys
folder = os.environ["ZOO_STAND_IN"]
flags = sys.argv[1:]
files = {{f.split("=", 1)[0]: open(f.split("=", 1)[1]).read() for f in flags if f.split("=")[0].endswith("_file")}}
json.dump({{"argv": flags, "files": files}}, open(os.path.join(folder, "call.json"), "w"))
os.execv(sys.executable, [sys.executable, "-m", "zoo.serve.server", *flags])
"""


@pytest.mark.subprocess
def test_the_tfserving_engine_drives_tensorflow_model_server_on_path(
    exported, tmp_path, monkeypatch
):
    from zoo.serve.engines import choose

    root, data, _ = exported
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "tensorflow_model_server"
    stand_in.write_text(STAND_IN.format(python=sys.executable))
    stand_in.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("ZOO_STAND_IN", str(tmp_path))
    entry = ModelEntry("galaxies", root / "models" / "galaxies")
    folder = tmp_path / "config"
    folder.mkdir()
    options = ServerOptions(
        port=free_port(), rest_api_port=free_port(), tensorflow_intra_op_parallelism=1,
        enable_serialization_as_tensor_content=True,
        model_config_file=str(write_model_config(folder / "models.config", [entry])),
    )  # fmt: skip
    write_server_files(options, folder, batching=True, metrics=True)
    engine = choose("auto", options, [entry])
    assert engine.name == "tfserving"
    engine.start(log=tmp_path / "server.log")
    try:
        engine.wait_ready(timeout=180)
        with ServingClient(f"127.0.0.1:{options.port}") as one:
            assert one.predict("galaxies", {"images": images(data, 1)})["probabilities"].shape == (
                1,
                3,
            )
            raw = raw_predict(one.channel, images(data, 1))  # as asked: raw bytes
            assert len(raw["probabilities"].tensor_content) == 3 * 4
            assert not raw["probabilities"].float_val
    finally:
        engine.stop()
    called = json.loads((tmp_path / "call.json").read_text())
    assert (
        f"--port={options.port}" in called["argv"]
        and f"--rest_api_port={options.rest_api_port}" in called["argv"]
    )
    assert "--tensorflow_intra_op_parallelism=1" in called["argv"]
    assert "--enable_serialization_as_tensor_content=true" in called["argv"]
    assert (
        "TensorFlow threads: 1 within an op, auto ops at once"
        in (tmp_path / "server.log").read_text()
    )
    assert "--enable_batching=true" in called["argv"] and not any(
        f.startswith("--host") for f in called["argv"]
    )
    assert (
        'base_path: "' + str((root / "models" / "galaxies").resolve()) + '"'
        in called["files"]["--model_config_file"]
    )
    assert "max_batch_size {\n  value: 32\n}" in called["files"]["--batching_parameters_file"]
    assert 'path: "/monitoring/prometheus/metrics"' in called["files"]["--monitoring_config_file"]


def test_the_docker_engine_mounts_models_read_only_and_publishes_ports(tmp_path):
    from zoo.serve.engines.docker import DockerEngine

    entry = ModelEntry("galaxies", tmp_path / "models" / "galaxies")
    options = ServerOptions(
        port=8500, rest_api_port=8501, host="0.0.0.0",
        model_config_file=str(write_model_config(tmp_path / "models.config", [entry])),
    )  # fmt: skip
    command = DockerEngine(options, [entry], gpu=True).command()
    assert command[:3] == ["docker", "run", "--rm"]
    assert f"{(tmp_path / 'models' / 'galaxies').resolve()}:/models/galaxies:ro" in command
    assert "0.0.0.0:8500:8500" in command and "0.0.0.0:8501:8501" in command
    assert (
        command[command.index("--gpus") + 1] == "all" and "tensorflow/serving:latest-gpu" in command
    )
    assert "--model_config_file=/zoo-config/docker.config" in command
    assert 'base_path: "/models/galaxies"' in (tmp_path / "docker.config").read_text()


@pytest.mark.subprocess
@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_zoo_serve_leaves_no_server_behind_when_it_is_killed(exported, tmp_path, how):
    """Ctrl-C (SIGINT) and SIGTERM stop the server through zoo serve, which exits cleanly;
    after SIGKILL the server sees its parent is gone and stops itself. (``zoo serve`` and
    ``zoo predict`` as a user types them run in docs/serving.md.)"""
    import signal as signals

    from helpers import ZOO_SCRIPT, wait_until_gone

    root, _, _ = exported
    workdir = tmp_path / f"serve-{how}"
    serving = subprocess.Popen(
        [str(ZOO_SCRIPT), "serve", str(root / "models"), "--port", str(free_port()),
         "--rest-port", str(free_port()), "--workdir", str(workdir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert serving.stdout.readline().startswith("serving on grpc://")
        serving.send_signal(getattr(signals, how))
        serving.wait(timeout=60)
    finally:
        serving.kill()
    assert wait_until_gone(str(workdir), timeout=15) == []
    if how != "SIGKILL":
        assert serving.returncode == 0 and "stopped" in serving.stderr.read()


@pytest.mark.subprocess
def test_the_grpc_health_service_reports_readiness(server):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 30
        while (
            stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status
            != health_pb2.HealthCheckResponse.SERVING
        ):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        for service in (
            "galaxies",
            "PredictionService",
            "ModelService",
        ):  # as TF Serving names them
            answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING, service


@pytest.mark.subprocess
@pytest.mark.train
def test_zoo_predict_sends_fits_files_as_float_pixels(shared_run, tmp_path):
    from click.testing import CliRunner

    from zoo.cli import cli

    data = tmp_path / "fits"
    write_synthetic_dataset(data, CLASSES, 6, 48, 5, seed=8, fmt="fits")
    run = zoo.finetune(
        "astro_small", data, tmp_path / "run", strategy="full", epochs=1, image_size=(48,),
        bands=("0", "2", "4"), registry_files=(str(shared_run.registry),), progress=False,
    )  # fmt: skip
    version = zoo.export(run.path, tmp_path / "models", "fits", check=False).path
    engine, options = start_server(tmp_path, [ModelEntry("fits", version.parent)])
    try:
        image = sorted(data.rglob("*.fits"))[0]
        result = CliRunner().invoke(
            cli,
            [
                "predict",
                str(image),
                "--server",
                f"127.0.0.1:{options.port}",
                "--model",
                "fits",
                "--bands",
                "0,2,4",
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        (answer,) = json.loads(result.output)
        local = tf.saved_model.load(str(version))
        from zoo.data.conform import conform
        from zoo.data.images import ImageGeometry, read_image

        pixels = conform(read_image(image, ("0", "2", "4")), ImageGeometry((48, 48), 3)).numpy()[
            None
        ]
        expected = local.signatures["serving_default"](images=tf.constant(pixels))[
            "probabilities"
        ].numpy()
        np.testing.assert_allclose(answer["probabilities"], expected[0], atol=1e-6)
    finally:
        engine.stop()
