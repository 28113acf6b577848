"""The gRPC services, on the servicer classes generated in tensorflow-serving-api.

PredictionService (Predict, Classify, Regress, MultiInference, GetModelMetadata) and
ModelService
(GetModelStatus, HandleReloadConfigRequest) answer through ``api.ServingApi``; every
error is a status code and message on the wire, never a crash of the server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from tensorflow_serving.apis import (
    model_management_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from zoo.errors import ConfigError
from zoo.serve.config import PLATFORM, entry_from_proto
from zoo.serve.server.api import ServingApi
from zoo.serve.server.manager import ModelManager
from zoo.serve.server.status import ServingError, invalid

log = logging.getLogger("zoo.serve")


def answer(context: grpc.ServicerContext, call: Callable[[], Any]) -> Any:
    """Run ``call``; its ServingError becomes the call's status on the wire."""
    try:
        return call()
    except ServingError as exc:
        context.abort(exc.code, exc.message)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, api: ServingApi) -> None:
        self.api = api

    def _serve(self, api: str, method: Callable[[Any], Any], request: Any, context: Any) -> Any:
        tasks = getattr(request, "tasks", None)  # MultiInference names its model per task
        name = (
            (tasks[0].model_spec.name if tasks else "")
            if tasks is not None
            else request.model_spec.name
        )

        def work() -> Any:
            with self.api.inflight.hold(request.ByteSize()):
                return method(request)

        return answer(context, lambda: self.api.call(api, "GRPC", name, work))

    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._serve("Predict", self.api.predict, request, context)

    def Classify(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._serve("Classify", self.api.classify, request, context)

    def Regress(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._serve("Regress", self.api.regress, request, context)

    def MultiInference(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._serve("MultiInference", self.api.multi_inference, request, context)

    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return self._serve("GetModelMetadata", self.api.metadata, request, context)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus for all; HandleReloadConfigRequest only where model management is on
    (--enable_model_management, or mutual TLS), and one reload at a time, so reloads can
    hold at most one of the server's threads and never starve Predict."""

    def __init__(self, api: ServingApi, load_timeout: float = 600, management: bool = True) -> None:
        self.api = api
        self.manager: ModelManager = api.manager
        self.load_timeout = load_timeout
        self.management = management
        self._reloading = threading.Lock()

    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return answer(context, lambda: self.api.model_status(request))

    def HandleReloadConfigRequest(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return answer(context, lambda: self._reload_one_at_a_time(request))

    def _reload_one_at_a_time(self, request: Any) -> Any:
        if not self.management:
            raise ServingError(
                grpc.StatusCode.PERMISSION_DENIED,
                "model management is off on this server: start it with "
                "--enable_model_management, or serve over mutual TLS",
            )
        if not self._reloading.acquire(blocking=False):
            raise ServingError(
                grpc.StatusCode.UNAVAILABLE, "another model config reload is in progress"
            )
        try:
            return self._reload(request)
        finally:
            self._reloading.release()

    def _reload(self, request: Any) -> Any:
        """Serve exactly the new model list; answer once every new model is available."""
        if request.config.WhichOneof("config") != "model_config_list":
            raise invalid(
                "ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
                "ModelConfigList is currently supported"
            )
        entries = []
        names: set[str] = set()
        for model in request.config.model_config_list.config:
            if model.name in names:
                raise invalid(f"Illegal to list model {model.name} multiple times in config list")
            names.add(model.name)
            if not model.base_path.startswith("/"):
                raise invalid(
                    f"Expected model {model.name} to have an absolute path or URI; got "
                    f"base_path()={model.base_path}"
                )
            if model.model_platform not in ("", PLATFORM):
                raise invalid(
                    f"model {model.name}: platform {model.model_platform} is not served here"
                )
            try:
                entries.append(entry_from_proto(model))
            except ConfigError as exc:
                raise invalid(str(exc)) from None
        before = set(self.manager.names())
        for entry in entries:  # TF Serving's file-system source refuses these outright
            if entry.name not in before and not Path(entry.base_path).is_dir():
                raise invalid(
                    f"Could not find base path {entry.base_path} for servable {entry.name}"
                )
        self.manager.configure(entries)
        added = [e.name for e in entries if e.name not in before]
        deadline = time.monotonic() + self.load_timeout
        while missing := [n for n in added if not self.manager.available(n)]:
            failed = [error for name in missing for error in self.manager.load_errors(name)]
            if failed:  # as soon as a load has failed, with its error (it is retried)
                raise ServingError(grpc.StatusCode.UNKNOWN, failed[0])
            if time.monotonic() > deadline:
                raise ServingError(
                    grpc.StatusCode.UNKNOWN,
                    f"{len(missing)} model(s) did not become available: {', '.join(missing)}",
                )
            time.sleep(0.05)
        return model_management_pb2.ReloadConfigResponse()
