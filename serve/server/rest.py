"""TF Serving's REST API on aiohttp: the same handlers as gRPC, in TF Serving's JSON.

``POST /v1/models/NAME[/versions/N|/labels/L]:predict|:classify``, ``GET`` of the same
path for the model's status and ``.../metadata`` for its signatures; Prometheus metrics
at the monitoring path when enabled. Requests come as ``instances`` (row format) or
``inputs`` (columnar), binary strings as ``{"b64": ...}``; errors are ``{"error": ...}``
with TF Serving's mapping of status codes to HTTP (model_servers/http_rest_api_handler.cc,
util/json_tensor.cc).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import grpc
import numpy as np
import tensorflow as tf
from aiohttp import web
from google.protobuf import json_format, text_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
)

from zoo.serve.options import ServerOptions
from zoo.serve.protos import SSLConfig
from zoo.serve.server import handlers
from zoo.serve.server.api import ServingApi
from zoo.serve.server.status import ServingError, invalid
from zoo.serve.server.versions import INT64_MAX

POST = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.I,
)
GET = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.I
)
#: The API names the metrics count REST requests under (the gRPC methods' names).
API_NAMES = {"predict": "Predict", "classify": "Classify", "regress": "Regress"}
AS_DICT = {"preserving_proto_field_name": True, "always_print_fields_with_no_presence": True}


class RestServer:
    """aiohttp on its own thread and event loop; requests run in an executor of their own,
    with as many threads as requests that may wait for a batch, so REST clients fill
    batches as gRPC ones do."""

    def __init__(self, api: ServingApi, options: ServerOptions, threads: int) -> None:
        self.api = api
        self.host = options.host
        self.port = options.rest_api_port
        self.ssl = _ssl_context(options.ssl_config_file)
        self.max_bytes = options.max_request_mb * 1024 * 1024
        self.timeout = options.rest_api_timeout_in_ms / 1000 or None  # 0: no limit
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="zoo-rest")
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._serve, daemon=True, name="zoo-rest").start()
        self._started.wait(30)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=self.max_bytes)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl)
        self._loop.run_until_complete(site.start())
        self._started.set()
        self._loop.run_forever()

    async def _handle(self, request: web.Request) -> web.Response:
        metrics = self.api.metrics
        if metrics is not None and request.path == metrics.path and request.method == "GET":
            return web.Response(text=metrics.exposition(), content_type="text/plain")
        try:
            body = await request.read()
            work = self._loop.run_in_executor(
                self._executor, self._dispatch, request.method, request.path, body
            )
            try:  # --rest_api_timeout_in_ms, TF Serving's deadline for a REST request
                result = await asyncio.wait_for(work, self.timeout)
            except asyncio.TimeoutError:  # noqa: UP041 - Python 3.10's is not the builtin
                raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
            status = 200
        except ServingError as exc:
            result, status = {"error": exc.message}, exc.http_status
        except web.HTTPException as exc:  # aiohttp's own refusals (a body too large), as JSON
            result, status = {"error": exc.reason}, exc.status
        except Exception as exc:  # a bug: this request's INTERNAL error, in JSON all the same
            error = ServingError.internal(exc)
            result, status = {"error": error.message}, error.http_status
        return web.Response(
            status=status, text=json.dumps(result, indent=4), content_type="application/json"
        )

    def _dispatch(self, method: str, path: str, body: bytes) -> Any:
        if method == "POST" and (match := POST.fullmatch(path)):
            name, version, label, kind = match.groups()
            spec = _spec(name, version, label)
            api, work = API_NAMES[kind.lower()], getattr(self, f"_{kind.lower()}")
            return self.api.call(api, "REST", spec.name, lambda: work(spec, _json(body)))
        if method == "GET" and (match := GET.fullmatch(path)):
            name, version, label, field = match.groups()
            if not name:
                raise invalid("Missing model name in request.")
            spec = _spec(name, version, label)
            if field:
                return self.api.call(
                    "GetModelMetadata", "REST", spec.name, lambda: self._metadata(spec)
                )
            request = get_model_status_pb2.GetModelStatusRequest(model_spec=spec)
            response = self.api.model_status(request)
            return json_format.MessageToDict(response, **AS_DICT)
        raise invalid(f"Malformed request: {method} {path}")

    def _predict(self, spec: Any, document: dict[str, Any]) -> Any:
        signature_name = document.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise invalid(
                f"JSON Value: {json.dumps(signature_name)} not formatted correctly. "
                "'signature_name' key must be a string value."
            )
        version = self.api.version_of(predict_pb2.PredictRequest(model_spec=spec))
        signature = version.signature_defs.get(signature_name or handlers.DEFAULT_SIGNATURE)
        if signature is None:
            raise invalid(
                f'Serving signature name: "{signature_name or handlers.DEFAULT_SIGNATURE}" not found in signature def'
            )
        if ("instances" in document) == ("inputs" in document):
            if "instances" in document:
                raise invalid(
                    "JSON Value: ... Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist "
                )
            raise invalid("Missing 'inputs' or 'instances' key")
        row = "instances" in document
        tensors = (
            _row_inputs(signature, document["instances"])
            if row
            else _columnar_inputs(signature, document["inputs"])
        )
        request = predict_pb2.PredictRequest(model_spec=spec)
        request.model_spec.signature_name = signature_name
        for key, array in tensors.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(array))
        response = self.api.predict(request)
        outputs = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
        return _row_outputs(outputs) if row else _columnar_outputs(outputs)

    def _classify(self, spec: Any, document: dict[str, Any]) -> Any:
        examples = document.get("examples")
        if examples is None:
            raise invalid(
                "JSON Value: ... When method is classify, key 'examples' is expected and was not found"
            )
        if not isinstance(examples, list):
            raise invalid("JSON Value: ... Expecting 'examples' value to be an list/array")
        if not examples:
            raise invalid("JSON Value: ... 'examples' value is an empty array")
        request = classification_pb2.ClassificationRequest(model_spec=spec)
        request.model_spec.signature_name = document.get("signature_name", "")
        target = request.input.example_list.examples
        if "context" in document:
            _example(document["context"], request.input.example_list_with_context.context)
            target = request.input.example_list_with_context.examples
        for features in examples:
            _example(features, target.add())
        response = self.api.classify(request)
        return {
            "results": [
                [[entry.label, entry.score] for entry in row.classes]
                for row in response.result.classifications
            ]
        }

    def _regress(self, spec: Any, document: dict[str, Any]) -> Any:
        raise ServingError(grpc.StatusCode.UNIMPLEMENTED, "Regress is not served by zoo")

    def _metadata(self, spec: Any) -> Any:
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=spec, metadata_field=[handlers.SIGNATURE_DEF_FIELD]
        )
        response = self.api.metadata(request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata[handlers.SIGNATURE_DEF_FIELD].Unpack(signatures)
        return {
            "model_spec": json_format.MessageToDict(response.model_spec, **AS_DICT),
            "metadata": {"signature_def": json_format.MessageToDict(signatures, **AS_DICT)},
        }


def _spec(name: str, version: str | None, label: str | None) -> model_pb2.ModelSpec:
    """The model spec a URL names, as TF Serving parses it (http_rest_api_util.cc)."""
    spec = model_pb2.ModelSpec(name=unquote(name))
    if version:
        number = int(version)
        if number > INT64_MAX:
            raise invalid(f"Failed to convert version: {version} to numeric.")
        spec.version.value = number
    elif label:
        spec.version_label = unquote(label)
    return spec


def _json(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise invalid("JSON Parse error: The document is empty")
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise invalid(f"JSON Parse error: {exc}") from None
    if not isinstance(document, dict):
        raise invalid(f"JSON Value: {body[:100]!r} Is not object")
    return document


def _value(value: Any, dtype: tf.DType) -> Any:
    """One JSON value (or a nested list of them) as the signature's dtype; b64 for bytes."""
    if isinstance(value, list):
        return [_value(item, dtype) for item in value]
    if isinstance(value, dict):
        if dtype == tf.string and set(value) == {"b64"} and isinstance(value["b64"], str):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except ValueError:
                raise invalid("Unable to base64 decode") from None
        raise invalid(
            f"JSON Value: {json.dumps(value)} Type: Object is not of expected type: {dtype.name}"
        )
    if dtype == tf.string:
        if not isinstance(value, str):
            raise invalid(
                f"JSON Value: {json.dumps(value)} Type: Number is not of expected type: string"
            )
        return value.encode()
    if isinstance(value, bool) or (dtype.is_integer and not isinstance(value, int)):
        kind = (
            "Bool"
            if isinstance(value, bool)
            else "Number"
            if isinstance(value, float)
            else "String"
        )
        raise invalid(
            f"JSON Value: {json.dumps(value)} Type: {kind} is not of expected type: {dtype.name}"
        )
    if not isinstance(value, (int, float)):
        raise invalid(
            f"JSON Value: {json.dumps(value)} Type: String is not of expected type: {dtype.name}"
        )
    return value


def _array(value: Any, dtype: tf.DType) -> np.ndarray:
    converted = _value(value, dtype)
    try:
        return np.array(converted, dtype=object if dtype == tf.string else dtype.as_numpy_dtype)
    except ValueError:
        raise invalid("Encountered list at unexpected size") from None


def _row_inputs(signature: Any, instances: Any) -> dict[str, np.ndarray]:
    if not isinstance(instances, list):
        raise invalid("Expecting 'instances' to be an list/array")
    if not instances:
        raise invalid("No values in 'instances' array")
    names = sorted(signature.inputs)
    if len(names) == 1:
        name = names[0]
        return {name: _array(instances, tf.as_dtype(signature.inputs[name].dtype))}
    rows = []
    for index, element in enumerate(instances):
        if not isinstance(element, dict):
            raise invalid(
                "instances is a plain list, but expecting list of objects as multiple input "
                "tensors required as per tensorinfo_map"
            )
        if sorted(element) != names:
            raise invalid(
                f"Failed to process element: {index} of 'instances' list. JSON object: "
                f"{json.dumps(element)[:200]} keys must be equal to: {','.join(names)}"
            )
        rows.append(element)
    return {
        name: _array([row[name] for row in rows], tf.as_dtype(signature.inputs[name].dtype))
        for name in names
    }


def _columnar_inputs(signature: Any, inputs: Any) -> dict[str, np.ndarray]:
    names = sorted(signature.inputs)
    if not isinstance(inputs, dict) or (len(names) == 1 and set(inputs) != set(names)):
        if len(names) != 1:
            raise invalid(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        return {names[0]: _array(inputs, tf.as_dtype(signature.inputs[names[0]].dtype))}
    for name in names:
        if name not in inputs:
            raise invalid(f"Missing named input: {name} in 'inputs' object.")
    return {name: _array(inputs[name], tf.as_dtype(signature.inputs[name].dtype)) for name in names}


def _json_value(name: str, array: np.ndarray) -> Any:
    if array.dtype == object:
        if name.endswith("_bytes"):
            return np.vectorize(lambda b: {"b64": base64.b64encode(b).decode()}, otypes=[object])(
                array
            ).tolist()
        return np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(array).tolist()
    return array.tolist()


def _row_outputs(outputs: dict[str, np.ndarray]) -> dict[str, Any]:
    sizes = {name: (array.shape[0] if array.ndim else None) for name, array in outputs.items()}
    batch = next(iter(sizes.values()), None)
    for name, size in sizes.items():
        if size is None:
            raise invalid(f"Tensor name: {name} has no shape information ")
        if size != batch:
            raise invalid(
                f"Tensor name: {name} has inconsistent batch size: {size} expecting: {batch}"
            )
    values = {name: _json_value(name, array) for name, array in outputs.items()}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    return {
        "predictions": [
            {name: values[name][row] for name in sorted(values)} for row in range(batch or 0)
        ]
    }


def _columnar_outputs(outputs: dict[str, np.ndarray]) -> dict[str, Any]:
    values = {name: _json_value(name, array) for name, array in outputs.items()}
    return {"outputs": next(iter(values.values())) if len(values) == 1 else values}


def _example(features: Any, example: Any) -> None:
    """A JSON feature map as a tf.Example: strings and b64 as bytes, floats, integers."""
    if not isinstance(features, dict):
        raise invalid(f"Example must be JSON object but got JSON {type(features).__name__}")
    for name, value in features.items():
        values = value if isinstance(value, list) else [value]
        feature = example.features.feature[name]
        for item in values:
            if isinstance(item, dict) and set(item) == {"b64"}:
                feature.bytes_list.value.append(base64.b64decode(item["b64"]))
            elif isinstance(item, str):
                feature.bytes_list.value.append(item.encode())
            elif isinstance(item, bool):
                feature.int64_list.value.append(int(item))
            elif isinstance(item, int):
                feature.int64_list.value.append(item)
            elif isinstance(item, float):
                feature.float_list.value.append(item)
            else:
                raise invalid(
                    f"Feature: {name} has element with unexpected JSON type: {type(item).__name__}"
                )
        kinds = sum(
            bool(getattr(feature, k).value) for k in ("bytes_list", "float_list", "int64_list")
        )
        if kinds > 1:
            raise invalid(f"Unexpected element type in feature: {name}")


def _ssl_context(path: str) -> ssl.SSLContext | None:
    if not path:
        return None
    import tempfile

    config = text_format.Parse(Path(path).read_text(), SSLConfig())
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as scratch:
        cert, key = Path(scratch) / "cert.pem", Path(scratch) / "key.pem"
        cert.write_text(config.server_cert)
        key.write_text(config.server_key)
        context.load_cert_chain(cert, key)
    if config.custom_ca:
        context.load_verify_locations(cadata=config.custom_ca)
    if config.client_verify:
        context.verify_mode = ssl.CERT_REQUIRED
    return context
