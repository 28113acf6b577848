"""The gRPC services, on the servicer classes generated in tensorflow-serving-api.

PredictionService (Predict, Classify, GetModelMetadata) and ModelService
(GetModelStatus, HandleReloadConfigRequest) answer through ``handlers``; every error is
a status code and message on the wire, never a crash of the server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from tensorflow_serving.apis import (
    model_management_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from zoo.errors import ConfigError
from zoo.serve.config import PLATFORM, entry_from_proto
from zoo.serve.server import handlers
from zoo.serve.server.models import ModelManager, wait_until
from zoo.serve.server.status import ServingError, invalid

log = logging.getLogger("zoo.serve")

Recorder = Callable[[str, str, str, float], None]  # (api, model, status code, seconds)


def answer(
    context: grpc.ServicerContext,
    api: str,
    model: str,
    record: Recorder | None,
    call: Callable[[], Any],
) -> Any:
    """Run ``call``; a ServingError (or a bug) becomes a status on the wire."""
    started = time.perf_counter()
    code = grpc.StatusCode.OK
    try:
        return call()
    except ServingError as exc:
        code = exc.code
        context.abort(exc.code, exc.message)
    except Exception as exc:  # a bug is INTERNAL for this request, not the server's end
        log.exception("%s failed", api)
        code = grpc.StatusCode.INTERNAL
        context.abort(code, f"{type(exc).__name__}: {exc}")
    finally:
        if record is not None:
            record(api, model, code.name, time.perf_counter() - started)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(
        self, manager: ModelManager, predict: Callable[[Any], Any], record: Recorder | None = None
    ) -> None:
        self.manager = manager
        self.predict = predict  # handlers.predict, or the batcher in front of it
        self.record = record

    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return answer(
            context, "Predict", request.model_spec.name, self.record, lambda: self.predict(request)
        )

    def Classify(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return answer(
            context, "Classify", request.model_spec.name, self.record,
            lambda: handlers.classify(self.manager, request),
        )  # fmt: skip

    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return answer(
            context, "GetModelMetadata", request.model_spec.name, None,
            lambda: handlers.metadata(self.manager, request),
        )  # fmt: skip


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: ModelManager, load_timeout: float = 600) -> None:
        self.manager = manager
        self.load_timeout = load_timeout

    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return answer(
            context, "GetModelStatus", request.model_spec.name, None,
            lambda: handlers.model_status(self.manager, request),
        )  # fmt: skip

    def HandleReloadConfigRequest(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return answer(context, "HandleReloadConfigRequest", "", None, lambda: self._reload(request))

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
        self.manager.configure(entries)
        added = [e.name for e in entries if e.name not in before]
        if not wait_until(lambda: all(self._available(n) for n in added), self.load_timeout):
            missing = [n for n in added if not self._available(n)]
            raise ServingError(
                grpc.StatusCode.UNKNOWN,
                f"{len(missing)} model(s) did not become available: {', '.join(missing)}",
            )
        return model_management_pb2.ReloadConfigResponse()

    def _available(self, name: str) -> bool:
        try:
            return bool(self.manager.resolve(name))
        except ServingError:
            return False
