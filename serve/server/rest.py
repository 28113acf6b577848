"""TF Serving's REST API on aiohttp: the same handlers as gRPC, in TF Serving's JSON.

``POST /v1/models/NAME[/versions/N|/labels/L]:predict|:classify|:regress``, ``GET`` of the
same path for the model's status and ``.../metadata`` for its signatures; Prometheus
metrics at the monitoring path when enabled. Request and response bodies are read and
written by ``json_tensor`` exactly as TF Serving's util/json_tensor.cc does; errors are
``{"error": ...}`` with TF Serving's HTTP status for each code, never an HTML page
(model_servers/http_rest_api_handler.cc, http_server.cc).
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import grpc
import tensorflow as tf
from aiohttp import web
from google.protobuf import json_format, text_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from zoo.serve.options import ServerOptions
from zoo.serve.protos import SSLConfig
from zoo.serve.server import handlers, json_tensor
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
API_PATH = re.compile(r"/v1/.*", re.I)
#: The API names the metrics count REST requests under (the gRPC methods' names).
API_NAMES = {"predict": "Predict", "classify": "Classify", "regress": "Regress"}
#: ToJsonString's options: every field printed, proto field names, indented.
AS_JSON = {"preserving_proto_field_name": True, "always_print_fields_with_no_presence": True}


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
        error: ServingError | None = None
        try:
            if not API_PATH.fullmatch(request.path):  # http_server.cc routes only these
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"Not Found: {request.path}")
            with self.api.inflight.hold(request.content_length or 0):  # before it is read
                body = await request.read()
                work = self._loop.run_in_executor(
                    self._executor, self._dispatch, request.method, request.path, body
                )
                try:  # --rest_api_timeout_in_ms, TF Serving's deadline for a REST request
                    text = await asyncio.wait_for(work, self.timeout)
                except asyncio.TimeoutError:  # noqa: UP041 - Python 3.10's is not the builtin
                    raise ServingError(
                        grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"
                    ) from None
        except ServingError as exc:
            error = exc
        except web.HTTPException as exc:  # aiohttp's own refusals (a body too large)
            error = ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, exc.reason)
            return _json_response(json_tensor.make_json_from_status(error), exc.status)
        except Exception as exc:  # a bug: this request's INTERNAL error, in JSON all the same
            error = ServingError.internal(exc)
        if error is not None:
            return _json_response(json_tensor.make_json_from_status(error), error.http_status)
        return _json_response(text, 200)

    def _dispatch(self, method: str, path: str, body: bytes) -> str:
        """The response body for one request (http_rest_api_handler.cc's ProcessRequest)."""
        if method == "POST" and (match := POST.fullmatch(path)):
            name, version, label, kind = match.groups()
            spec = _spec(name, version, label)
            api, work = API_NAMES[kind.lower()], getattr(self, f"_{kind.lower()}")
            return self.api.call(api, "REST", spec.name, lambda: work(spec, body))
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
            return json_format.MessageToJson(self.api.model_status(request), **AS_JSON)
        raise invalid(f"Malformed request: {method} {path}")

    def _predict(self, spec: model_pb2.ModelSpec, body: bytes) -> str:
        request = predict_pb2.PredictRequest(model_spec=spec)

        def signature_inputs(name: str) -> Any:  # HttpRestApiHandler::GetInfoMap
            key = name or handlers.DEFAULT_SIGNATURE
            signature = self.api.version_of(request).signature_defs.get(key)
            if signature is None:
                raise invalid(f'Serving signature name: "{key}" not found in signature def')
            return signature.inputs

        format = json_tensor.fill_predict_request_from_json(body, signature_inputs, request)
        response = self.api.predict(request)
        return json_tensor.make_json_from_tensors(_typed(response.outputs), format)

    def _classify(self, spec: model_pb2.ModelSpec, body: bytes) -> str:
        request = classification_pb2.ClassificationRequest(model_spec=spec)
        json_tensor.fill_classification_request_from_json(body, request)
        response = self.api.classify(request)
        return json_tensor.make_json_from_classification_result(response.result)

    def _regress(self, spec: model_pb2.ModelSpec, body: bytes) -> str:
        request = regression_pb2.RegressionRequest(model_spec=spec)
        json_tensor.fill_regression_request_from_json(body, request)
        response = self.api.regress(request)
        return json_tensor.make_json_from_regression_result(response.result)

    def _metadata(self, spec: model_pb2.ModelSpec) -> str:
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=spec, metadata_field=[handlers.SIGNATURE_DEF_FIELD]
        )
        response = self.api.metadata(request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata[handlers.SIGNATURE_DEF_FIELD].Unpack(signatures)
        model_spec = json_format.MessageToDict(response.model_spec, **AS_JSON)
        signature_map = json_format.MessageToDict(signatures, **AS_JSON)
        return json.dumps(
            {"model_spec": model_spec, "metadata": {"signature_def": signature_map}}, indent=1
        )


def _json_response(text: str, status: int) -> web.Response:
    return web.Response(status=status, text=text, content_type="application/json")


def _typed(outputs: Any) -> dict[str, Any]:
    """Output tensors in the typed fields json_tensor reads (a server started with
    --enable_serialization_as_tensor_content sends raw bytes over gRPC, not REST)."""
    return {
        name: handlers.tensor_proto(tf.make_ndarray(proto)) if proto.tensor_content else proto
        for name, proto in outputs.items()
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
