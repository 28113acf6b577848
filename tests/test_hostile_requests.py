"""The embedded server under hostile and heavy requests: it never dies and keeps answering.

One server in another process, on the suite's exported galaxy model, with limits scaled
down so that each attack stays cheap for the test machine (``--max_request_mb=16``,
``--max_inflight_request_mb=40``; the defaults are 256 and 1024). Every attack comes from
a real client (gRPC stubs, HTTP), each case has a bounded time, and after each one the
server must answer a good request and hold less memory than the bound (its resident set,
read from /proc). Then 16 clients send good requests while attackers run: none may fail.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from helpers import free_port
from zoo.serve.config import ModelEntry, model_config, write_model_config
from zoo.serve.server_files import monitoring_text

pytestmark = pytest.mark.subprocess

MAX_REQUEST_MB, MAX_INFLIGHT_MB = 16, 40
#: The server's resident memory may grow by this much over its idle size, whatever comes.
RSS_GROWTH_BOUND = 1.5 * 2**30
CASE_SECONDS = 60


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 4096)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


class Server:
    """The embedded server in its own process, and what a test needs to reach it."""

    def __init__(self, root: Path, base: Path) -> None:
        self.base = base
        self.port, self.rest_port = free_port(), free_port()
        folder = root / "server"
        folder.mkdir()
        config = write_model_config(folder / "models.config", [ModelEntry("galaxies", base)])
        (folder / "monitoring.config").write_text(monitoring_text())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "zoo.serve.server",
             f"--port={self.port}", f"--rest_api_port={self.rest_port}",
             f"--model_config_file={config}",
             f"--monitoring_config_file={folder / 'monitoring.config'}",
             f"--max_request_mb={MAX_REQUEST_MB}", f"--max_inflight_request_mb={MAX_INFLIGHT_MB}",
             "--enable_model_management", "--load_retry_interval_micros=1000000",
             "--file_system_poll_wait_seconds=1"],
            stdout=open(folder / "server.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
        )  # fmt: skip
        self.channel = grpc.insecure_channel(
            f"127.0.0.1:{self.port}",
            options=[("grpc.max_send_message_length", 512 * 2**20),
                     ("grpc.max_receive_message_length", 512 * 2**20)],
        )  # fmt: skip
        self.predictions = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self._wait_ready()
        self.idle_rss = self.rss()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the server exited while starting"
            try:
                request = get_model_status_pb2.GetModelStatusRequest()
                request.model_spec.name = "galaxies"
                states = self.models.GetModelStatus(request, timeout=5).model_version_status
                if any(
                    s.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE for s in states
                ):
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.3)
        raise AssertionError("the server did not become ready")

    def rss(self) -> int:
        """The server process's resident memory, from /proc."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def rest(self, method: str, path: str, body: bytes | None = None) -> tuple[int, str, str]:
        """(HTTP status, content type, body) of a REST call."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.rest_port}{path}", data=body, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=CASE_SECONDS) as reply:
                return reply.status, reply.headers.get_content_type(), reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get_content_type(), error.read().decode()

    def stop(self) -> None:
        self.channel.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def server(shared_run, shared_export, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-server")
    base = root / "models" / "galaxies"
    shutil.copytree(shared_export.path, base / "1")
    running = Server(root, base)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def good_image(shared_run) -> bytes:
    return sorted(shared_run.data.rglob("*.png"))[0].read_bytes()


def good_request(image: bytes) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "galaxies"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto([image]))
    return request


def refused(method, request) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        method(request, timeout=CASE_SECONDS)
    return caught.value.code(), caught.value.details()


@pytest.fixture
def after_each(server, good_image):
    """After each attack: the server is alive, answers a good request, and its memory is
    within bounds."""
    started = time.monotonic()
    yield
    assert time.monotonic() - started < 4 * CASE_SECONDS
    assert server.process.poll() is None, "the server died"
    reply = server.predictions.Predict(good_request(good_image), timeout=CASE_SECONDS)
    assert tf.make_ndarray(reply.outputs["probabilities"]).shape == (1, 3)
    assert server.rss() - server.idle_rss < RSS_GROWTH_BOUND, (server.rss(), server.idle_rss)


def test_a_string_tensor_declaring_3e8_elements_without_values(server, after_each):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "galaxies"
    proto = request.inputs["images"]
    proto.dtype = types_pb2.DT_STRING
    proto.tensor_shape.dim.add(size=300_000_000)
    assert request.ByteSize() < 40
    code, details = refused(server.predictions.Predict, request)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "--max_request_elements" in details


def test_shapes_that_do_not_match_their_values(server, after_each):
    cases = []
    negative = predict_pb2.PredictRequest()
    negative.model_spec.name = "galaxies"
    negative.inputs["images"].dtype = types_pb2.DT_STRING
    negative.inputs["images"].tensor_shape.dim.add(size=-1)
    cases.append((negative, "must be 0 or more"))
    fewer = good_request(b"abc")
    fewer.inputs["images"].tensor_shape.dim[0].size = 1000
    cases.append((fewer, "1 string values for a shape of 1000 elements"))
    content = predict_pb2.PredictRequest()
    content.model_spec.name, content.model_spec.signature_name = "galaxies", "predict_images"
    content.inputs["images"].CopyFrom(
        tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=b"\0" * 12)
    )
    for size in (1, 48, 48, 3):
        content.inputs["images"].tensor_shape.dim.add(size=size)
    cases.append((content, "12 bytes of tensor_content for 6912 elements"))
    overflow = predict_pb2.PredictRequest()
    overflow.model_spec.name = "galaxies"
    overflow.inputs["images"].dtype = types_pb2.DT_STRING
    for _ in range(3):
        overflow.inputs["images"].tensor_shape.dim.add(size=2**62)
    cases.append((overflow, "--max_request_elements"))
    for request, message in cases:
        code, details = refused(server.predictions.Predict, request)
        assert code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED)
        assert message in details, details


def test_four_concurrent_decompression_bombs(server, after_each):
    bomb = png_claiming(20000, 20000)
    assert len(bomb) < 10_000
    outcomes = []

    def attack():
        outcomes.append(refused(server.predictions.Predict, good_request(bomb)))

    threads = [threading.Thread(target=attack) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [code for code, _ in outcomes] == [grpc.StatusCode.INVALID_ARGUMENT] * 4
    assert all("20000x20000 pixels, over the 50000000 pixels" in details for _, details in outcomes)
    example = tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[bomb]))}))  # fmt: skip
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name, request.model_spec.signature_name = "galaxies", "classify"
    request.input.example_list.examples.add().CopyFrom(example)
    code, details = refused(server.predictions.Classify, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "--max_image_pixels" in details


def floats_request(megabytes: float) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "galaxies", "predict_images"
    count = int(megabytes * 2**20 / (48 * 48 * 3 * 4))
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(np.zeros((count, 48, 48, 3), "float32")))
    return request


def test_six_concurrent_large_grpc_predicts_and_one_too_large(server, after_each):
    """Six requests of 12 MB at once against a 40 MB in-flight budget: some are served,
    the rest refused at once (RESOURCE_EXHAUSTED), none queued in memory; a request over
    --max_request_mb is refused by gRPC itself."""
    request = floats_request(12)
    outcomes = []

    def send():
        try:
            server.predictions.Predict(request, timeout=CASE_SECONDS)
            outcomes.append("served")
        except grpc.RpcError as exc:
            outcomes.append(exc.code())

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 6 and "served" in outcomes
    assert set(outcomes) <= {"served", grpc.StatusCode.RESOURCE_EXHAUSTED}
    code, _ = refused(server.predictions.Predict, floats_request(20))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_rest_answers_every_hostile_body_in_json(server, after_each):
    """Each answer is TF Serving's JSON error with its HTTP status, never an HTML page."""
    deep = b'{"instances": [1], "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    cases = [
        ("GET", "/v1/models/galaxies/versions/99999999999999999999", None, 400,
         "Failed to convert version"),
        ("POST", "/v1/models/galaxies:predict", b'{"signature_name": 7, "instances": [1]}', 400,
         "'signature_name' key must be a string value"),
        ("POST", "/v1/models/galaxies:predict",
         b'{"signature_name": "predict_images", "instances": [99999999999999999999999]}', 400, ""),
        ("POST", "/v1/models/galaxies:predict",
         b'{"signature_name": "predict_images", "instances": [1e999]}', 400, "JSON Parse error"),
        ("POST", "/v1/models/galaxies:predict", b"[" * 3000 + b"]" * 3000, 400, ""),
        ("POST", "/v1/models/galaxies:predict", deep, 400, ""),
        ("GET", "/v1/models/galaxies/labels/UNKNOWN", None, 400,
         "Unrecognized servable version label: UNKNOWN"),
        ("GET", "/nothing/here", None, 404, "Not Found"),
        ("POST", "/v1/models/galaxies:predict", b"x" * (MAX_REQUEST_MB * 2**20 + 1), 413, ""),
    ]  # fmt: skip
    for method, path, body, status, message in cases:
        got, content_type, text = server.rest(method, path, body)
        assert (got, content_type) == (status, "application/json"), (path, got, text[:200])
        assert message in json.loads(text)["error"], text[:300]


def test_metrics_escape_names_and_do_not_grow_with_unknown_ones(server, good_image, after_each):
    hostile = 'x"}\ninjected_metric{a="b'
    for name in [hostile] + [f"nobody-{i}" for i in range(2000)]:
        request = good_request(good_image)
        request.model_spec.name = name
        refused(server.predictions.Predict, request)
    _, _, text = server.rest("GET", "/monitoring/prometheus/metrics")
    assert not any(line.startswith("injected_metric") for line in text.splitlines())
    assert "nobody-" not in text and len(text) < 50_000
    for line in text.splitlines():  # every sample line is a name, labels, a value
        assert line.startswith(("#", ":tensorflow:serving:")), line


def test_reloads_naming_missing_paths_never_starve_predict(server, good_image, after_each):
    """Eight reloads at once, naming a base path that does not exist: each is answered
    quickly (refused, or told another reload runs), and Predict is answered meanwhile."""
    request = model_management_pb2.ReloadConfigRequest()
    request.config.CopyFrom(model_config([
        ModelEntry("galaxies", server.base), ModelEntry("ghost", Path("/nowhere/at/all"))]))  # fmt: skip
    outcomes = []

    def reload():
        outcomes.append(refused(server.models.HandleReloadConfigRequest, request)[0])

    threads = [threading.Thread(target=reload) for _ in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    answered = server.predictions.Predict(good_request(good_image), timeout=10)
    for thread in threads:
        thread.join()
    assert answered.outputs["probabilities"].float_val
    assert time.monotonic() - started < 20
    assert set(outcomes) <= {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAVAILABLE}


def test_a_version_written_slowly_is_loaded_once_whole_and_odd_folders_are_ignored(
    server, shared_export, after_each
):
    (server.base / "²").mkdir()  # a digit to str.isdigit, not a version
    (server.base / "-3").mkdir()
    partial = server.base / "2"
    partial.mkdir()
    shutil.copy(shared_export.path / "saved_model.pb", partial / "saved_model.pb")
    time.sleep(3)  # the first load fails: no variables yet
    for item in shared_export.path.iterdir():
        if item.name != "saved_model.pb":
            copy = shutil.copytree if item.is_dir() else shutil.copy
            copy(item, partial / item.name)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "galaxies"
    deadline = time.monotonic() + CASE_SECONDS
    while True:
        states = {
            s.version: s.state for s in server.models.GetModelStatus(request).model_version_status
        }
        if states.get(2) == get_model_status_pb2.ModelVersionStatus.AVAILABLE:
            break
        assert time.monotonic() < deadline, states
        time.sleep(0.5)
    assert set(states) <= {1, 2}


def test_sixteen_clients_lose_no_request_while_attackers_run(server, good_image, after_each):
    stop = threading.Event()
    failures, answers = [], []

    def client():
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for _ in range(20):
                try:
                    stub.Predict(good_request(good_image), timeout=CASE_SECONDS)
                    answers.append(1)
                except grpc.RpcError as exc:
                    failures.append((exc.code(), exc.details()))

    def attacker(make):
        while not stop.is_set():
            try:
                server.predictions.Predict(make(), timeout=CASE_SECONDS)
            except grpc.RpcError:
                pass

    bomb = good_request(png_claiming(20000, 20000))
    huge = predict_pb2.PredictRequest()
    huge.model_spec.name = "galaxies"
    huge.inputs["images"].dtype = types_pb2.DT_STRING
    huge.inputs["images"].tensor_shape.dim.add(size=300_000_000)
    attackers = [
        threading.Thread(target=attacker, args=(lambda: bomb,)),
        threading.Thread(target=attacker, args=(lambda: huge,)),
        threading.Thread(target=attacker, args=(lambda: floats_request(8),)),
    ]
    clients = [threading.Thread(target=client) for _ in range(16)]
    for thread in attackers + clients:
        thread.start()
    for thread in clients:
        thread.join()
    stop.set()
    for thread in attackers:
        thread.join()
    assert failures == [] and len(answers) == 16 * 20
