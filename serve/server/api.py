"""TF Serving's API, once for both protocols: the gRPC servicers and the REST gateway call
these methods with request protos, so both answer alike, map errors alike (a ServingError,
never a crash: a bug is INTERNAL for that request) and count requests under one spelling
of each API's name in the metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from tensorflow_serving.apis import get_model_status_pb2, model_pb2

from zoo.serve.server import handlers, inference
from zoo.serve.server.limits import InflightBudget, RequestLimits
from zoo.serve.server.manager import ModelManager
from zoo.serve.server.metrics import Metrics
from zoo.serve.server.status import ServingError, invalid

log = logging.getLogger("zoo.serve")
Result = TypeVar("Result")


class ServingApi:
    """The model manager behind TF Serving's requests; ``predict`` may be a batcher's."""

    def __init__(
        self,
        manager: ModelManager,
        *,
        metrics: Metrics | None = None,
        predict: Callable[[Any], Any] | None = None,
        as_content: bool = False,
        limits: RequestLimits | None = None,
        inflight: InflightBudget | None = None,
    ) -> None:
        self.manager = manager
        self.metrics = metrics
        self.limits = limits or RequestLimits()
        self.inflight = inflight or InflightBudget(2**62)
        self.as_content = as_content  # --enable_serialization_as_tensor_content
        self._predict = predict or self._predict_now

    def call(self, api: str, entrypoint: str, model: str, work: Callable[[], Result]) -> Result:
        """Run ``work``; count it in the metrics; any failure is a ServingError."""
        started = time.perf_counter()
        error: ServingError | None = None
        try:
            return work()
        except ServingError as exc:
            error = exc
        except Exception as exc:
            log.exception("%s failed", api)
            error = ServingError.internal(exc)
        finally:
            if self.metrics is not None:
                known = model if model in self.manager.names() else ""
                code = error.code.name if error else "OK"
                self.metrics.record(api, known, code, time.perf_counter() - started, entrypoint)
        raise error

    def version_of(self, request: Any) -> Any:
        return self.manager.resolve(*handlers.model_spec(request))

    # --- the API ----------------------------------------------------------------------

    def predict(self, request: Any) -> Any:
        self.limits.check_predict(request)
        return self._predict(request)

    def _predict_now(self, request: Any) -> Any:
        return handlers.run_predict(self.version_of(request), request, as_content=self.as_content)

    def classify(self, request: Any) -> Any:
        self.limits.check_examples(request.input)
        return inference.classify(self.version_of(request), request)

    def regress(self, request: Any) -> Any:
        self.limits.check_examples(request.input)
        return inference.regress(self.version_of(request), request)

    def multi_inference(self, request: Any) -> Any:
        """On the model the first task names (TF Serving's GetModelSpecFromRequest)."""
        first = request.tasks[0].model_spec if request.tasks else None
        inference.check_multi_inference(request)
        self.limits.check_examples(request.input)
        version = self.manager.resolve(*handlers.servable(first or model_pb2.ModelSpec()))
        return inference.multi_inference(version, request)

    def metadata(self, request: Any) -> Any:
        handlers.check_metadata_request(request)
        return handlers.metadata(self.version_of(request), request)

    def model_status(self, request: Any) -> get_model_status_pb2.GetModelStatusResponse:
        """Every version's state, or one version's; a label names its version (TF Serving
        ignores a label here, and answers for a label that does not exist)."""
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        spec = request.model_spec
        number = spec.version.value if spec.HasField("version") else None
        if spec.WhichOneof("version_choice") == "version_label":
            number = self.manager.labelled(spec.name, spec.version_label)
        return handlers.model_status(self.manager.status(spec.name, number))
