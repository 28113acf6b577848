"""A client of TF Serving's gRPC API (the real server or zoo's embedded one), on the stubs
generated in tensorflow-serving-api.

Large messages are allowed (images in batches), UNAVAILABLE is retried with exponential
backoff (a server still loading, a queue momentarily full) by gRPC's own retry policy,
given in the channel's service config, every call has a deadline, and TLS (with a client
certificate for mutual TLS) is one argument away.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

MAX_MESSAGE = 256 * 1024 * 1024
SERVICES = ("tensorflow.serving.PredictionService", "tensorflow.serving.ModelService")
#: gRPC caps a retry policy at 5 attempts.
MAX_ATTEMPTS = 5


def retry_policy(retries: int, backoff: float) -> str:
    """A gRPC service config retrying UNAVAILABLE ``retries`` times, backoff doubling."""
    policy = {
        "maxAttempts": min(retries + 1, MAX_ATTEMPTS),
        "initialBackoff": f"{backoff}s",
        "maxBackoff": f"{backoff * 2 ** max(retries - 1, 0)}s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    names = [{"service": service} for service in SERVICES]
    return json.dumps({"methodConfig": [{"name": names, "retryPolicy": policy}]})


@dataclass(frozen=True)
class TLS:
    """PEM files: the CA that signed the server's certificate, and a client pair for mTLS."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        read = lambda path: Path(path).read_bytes() if path else None  # noqa: E731
        return grpc.ssl_channel_credentials(read(self.ca), read(self.key), read(self.cert))


class ServingClient:
    """Predict, Classify, metadata and status calls against one server address."""

    def __init__(
        self,
        address: str,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.2,
        tls: TLS | None = None,
        server_name: str | None = None,
    ) -> None:
        """``retries`` (0 to 4): how often UNAVAILABLE is tried again, ``backoff`` seconds
        after the first failure and twice as long after each next one (with gRPC's jitter)."""
        options: list[tuple[str, Any]] = [
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.per_rpc_retry_buffer_size", MAX_MESSAGE),  # a large request is retried too
        ]
        if retries > 0:
            options += [("grpc.enable_retries", 1)]
            options += [("grpc.service_config", retry_policy(retries, backoff))]
        else:
            options += [("grpc.enable_retries", 0)]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        self.channel = (
            grpc.secure_channel(address, tls.credentials(), options=options)
            if tls
            else grpc.insecure_channel(address, options=options)
        )
        self.predictions = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self.timeout = timeout

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> ServingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def predict(
        self,
        model: str,
        inputs: Mapping[str, Any],
        *,
        signature: str = "",
        version: int | None = None,
        label: str | None = None,
        output_filter: Sequence[str] = (),
    ) -> dict[str, np.ndarray]:
        """The outputs of ``signature`` for ``inputs`` (name to array, or to a list of bytes)."""
        request = predict_pb2.PredictRequest(output_filter=list(output_filter))
        request.model_spec.CopyFrom(model_spec(model, signature, version, label))
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        response = self._call(self.predictions.Predict, request)
        self.last_spec = response.model_spec
        return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}

    def classify(
        self,
        model: str,
        examples: Sequence[bytes],
        *,
        signature: str = "classify",
        version: int | None = None,
        label: str | None = None,
    ) -> list[list[tuple[str, float]]]:
        """(label, score) pairs per serialized tf.Example."""
        request = classification_pb2.ClassificationRequest()
        request.model_spec.CopyFrom(model_spec(model, signature, version, label))
        for example in examples:
            request.input.example_list.examples.add().ParseFromString(example)
        response = self._call(self.predictions.Classify, request)
        self.last_spec = response.model_spec
        return [
            [(c.label, c.score) for c in row.classes] for row in response.result.classifications
        ]

    def regress(
        self,
        model: str,
        examples: Sequence[bytes],
        *,
        signature: str = "regress",
        version: int | None = None,
        label: str | None = None,
    ) -> list[float]:
        """One value per serialized tf.Example."""
        request = regression_pb2.RegressionRequest()
        request.model_spec.CopyFrom(model_spec(model, signature, version, label))
        for example in examples:
            request.input.example_list.examples.add().ParseFromString(example)
        response = self._call(self.predictions.Regress, request)
        self.last_spec = response.model_spec
        return [r.value for r in response.result.regressions]

    def metadata(self, model: str, version: int | None = None) -> dict[str, Any]:
        """The model's SignatureDefs, by name."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.CopyFrom(model_spec(model, "", version, None))
        response = self._call(self.predictions.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        return dict(signatures.signature_def)

    def status(self, model: str, version: int | None = None) -> dict[int, str]:
        """Each version's state name ('AVAILABLE', 'LOADING', ...)."""
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.CopyFrom(model_spec(model, "", version, None))
        response = self._call(self.models.GetModelStatus, request)
        states = get_model_status_pb2.ModelVersionStatus.State
        return {s.version: states.Name(s.state) for s in response.model_version_status}

    def _call(self, method: Any, request: Any) -> Any:
        return method(request, timeout=self.timeout)


def model_spec(
    name: str, signature: str, version: int | None, label: str | None
) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=name, signature_name=signature)
    if version is not None:
        spec.version.value = version
    elif label:
        spec.version_label = label
    return spec
