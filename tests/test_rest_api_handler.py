"""TF Serving's REST handler tests (model_servers/http_rest_api_handler_test.cc), ported.

Upstream drives HttpRestApiHandler::ProcessRequest on a ServerCore serving
saved_model_half_plus_two_2_versions, version 123 only, with the label "Version_Label";
here the same requests go through the embedded server's REST dispatch on the same model
(written by tfserving_testdata.py), in this process. Keep upstream's test names.
"""

from __future__ import annotations

import json

import grpc
import pytest
from tfserving_testdata import VERSION, half_plus_two_tf1

from zoo.serve.config import ModelEntry
from zoo.serve.options import ServerOptions
from zoo.serve.server.api import ServingApi
from zoo.serve.server.manager import ModelManager
from zoo.serve.server.rest import GET, POST, RestServer
from zoo.serve.server.status import ServingError

MODEL = "saved_model_half_plus_two_2_versions"
LABEL = "Version_Label"


@pytest.fixture(scope="module")
def handler(tmp_path_factory):
    base = tmp_path_factory.mktemp("rest") / MODEL
    for version in (VERSION, "00000124"):
        half_plus_two_tf1(base / version)
    entry = ModelEntry(MODEL, base, policy="specific", versions=(123,), labels={LABEL: 123})
    rest = RestServer(ServingApi(ModelManager([entry])), ServerOptions(rest_api_port=1), 1)
    return rest._dispatch


def process(handler, method: str, path: str, body: str = "") -> tuple[grpc.StatusCode, str]:
    """ProcessRequest: the status code and the response body (TF Serving's JSON)."""
    try:
        return grpc.StatusCode.OK, handler(method, path, body.encode())
    except ServingError as exc:
        return exc.code, exc.message


def compare_json(output: str, expected: str) -> None:
    assert json.loads(output) == json.loads(expected)


def test_k_path_regex():
    """kPathRegex: the handler's paths (here its two request patterns) match /v1/models."""
    assert GET.fullmatch("/v1/models") and not GET.fullmatch("/statuspage")
    assert not GET.fullmatch("/index") and not POST.fullmatch("/v1/models")


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/v1/foo", "Malformed request"),
        ("POST", "/v1/foo", "Malformed request"),
        ("GET", "/v1/models", "Missing model name"),
        ("GET", "/v1/models/debug/model_name", "Malformed request"),
        ("POST", "/v1/models", "Malformed request"),
        ("GET", "/v1/models/foo:predict", "Malformed request"),
        ("GET", "/v1/models/foo/version/50:predict", "Malformed request"),
        ("POST", "/v1/models/foo/version/50:regress", "Malformed request"),
        ("POST", "/v1/models/foo/versions/HELLO:regress", "Malformed request"),
        ("POST", f"/v1/models/foo/versions/{2**64 - 1}:regress", "Failed to convert version"),
        ("POST", "/v1/models/foo/metadata", "Malformed request"),
        ("POST", "/v1/models/foo/label/some_label:regress", "Malformed request"),
        ("POST", "/v1/models/foo/versions/50/labels/some_label:regress", "Malformed request"),
        ("POST", "/v1/models/foo/versions/some_label:regress", "Malformed request"),
    ],
)
def test_unsupported_api_calls(handler, method, path, message):
    code, output = process(handler, method, path)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and message in output


def test_predict_model_name_version_errors(handler):
    body = '{ "instances": [1] }'
    assert process(handler, "POST", "/v1/models/foo:predict", body)[0] == grpc.StatusCode.NOT_FOUND
    path = f"/v1/models/{MODEL}/versions/50:predict"
    assert process(handler, "POST", path, body)[0] == grpc.StatusCode.NOT_FOUND
    path = f"/v1/models/{MODEL}/labels/some_label:predict"
    assert process(handler, "POST", path, body)[0] == grpc.StatusCode.INVALID_ARGUMENT


def test_predict_request_errors(handler):
    path = f"/v1/models/{MODEL}/versions/123:predict"
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    code, output = process(handler, "POST", path, "")
    assert code == invalid and "JSON Parse error: The document is empty" in output
    code, output = process(handler, "POST", path, "instances = [1, 2]")
    assert code == invalid and "JSON Parse error: Invalid value" in output
    code, output = process(handler, "POST", path, '{ "instances": ["x", "y"] }')
    assert code == invalid and "not of expected type: float" in output
    labelled = f"/v1/models/{MODEL}/labels/Version_Nonexistent:predict"
    code, output = process(handler, "POST", labelled, '{ "instances": ["x", "y"] }')
    assert code == invalid and "Unrecognized servable version label" in output
    code, output = process(handler, "POST", path, '{ "signature_name": 100 }')
    assert code == invalid and "'signature_name' key must be a string value." in output


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/models/{MODEL}/versions/123:predict",
        f"/v1/models/{MODEL}:predict",
        f"/v1/models/{MODEL}/labels/{LABEL}:predict",
    ],
)
def test_predict(handler, path):
    code, output = process(handler, "POST", path, '{"instances": [[1.0, 2.0], [3.0, 4.0]]}')
    assert code == grpc.StatusCode.OK
    compare_json(output, '{ "predictions": [[2.5, 3.0], [3.5, 4.0]] }')
    code, output = process(handler, "POST", path, '{"instances": [1.0, 2.0]}')
    compare_json(output, '{ "predictions": [2.5, 3.0] }')
    body = '{"signature_name": "serving_default", "instances": [3.0, 4.0]}'
    compare_json(process(handler, "POST", path, body)[1], '{ "predictions": [3.5, 4.0] }')
    body = '{"signature_name": "serving_default", "inputs": [3.0, 4.0]}'
    compare_json(process(handler, "POST", path, body)[1], '{ "outputs": [3.5, 4.0] }')


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/models/{MODEL}/versions/123:regress",
        f"/v1/models/{MODEL}:regress",
        f"/v1/models/{MODEL}/labels/{LABEL}:regress",
    ],
)
def test_regress(handler, path):
    body = '{"signature_name": "regress_x_to_y", "examples": [ { "x": 80.0 } ] }'
    code, output = process(handler, "POST", path, body)
    assert code == grpc.StatusCode.OK
    compare_json(output, '{ "results": [42] }')


@pytest.mark.parametrize(
    ("path", "x", "score"),
    [
        (f"/v1/models/{MODEL}/versions/123:classify", 20.0, 12),
        (f"/v1/models/{MODEL}:classify", 10.0, 7),
    ],
)
def test_classify(handler, path, x, score):
    body = f'{{"signature_name": "classify_x_to_y", "examples": [ {{ "x": {x} }} ] }}'
    code, output = process(handler, "POST", path, body)
    assert code == grpc.StatusCode.OK
    compare_json(output, f'{{ "results": [[["", {score}]]] }}')


STATUS = """{
 "model_version_status": [
  {
   "version": "123",
   "state": "AVAILABLE",
   "status": {
    "error_code": "OK",
    "error_message": ""
   }
  }
 ]
}"""


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/models/{MODEL}",
        f"/v1/models/{MODEL}/versions/123",
        f"/v1/models/{MODEL}/labels/{LABEL}",
    ],
)
def test_get_status(handler, path):
    code, output = process(handler, "GET", path)
    assert code == grpc.StatusCode.OK
    compare_json(output, STATUS)


def test_get_model_metadata(handler):
    """Upstream compares with saved_model_half_plus_two_2_versions_metadata.json: the model
    spec, and each signature of the TF1 half_plus_two with its tensors."""
    code, output = process(handler, "GET", f"/v1/models/{MODEL}/versions/123/metadata")
    assert code == grpc.StatusCode.OK
    answer = json.loads(output)
    assert answer["model_spec"] == {"name": MODEL, "signature_name": "", "version": "123"}
    signatures = answer["metadata"]["signature_def"]["signature_def"]
    assert sorted(signatures) == [
        "classify_x_to_y", "regress_x2_to_y3", "regress_x_to_y", "regress_x_to_y2",
        "serving_default",
    ]  # fmt: skip
    assert signatures["serving_default"]["inputs"]["x"]["name"] == "x:0"
    assert signatures["regress_x_to_y"]["method_name"] == "tensorflow/serving/regress"
