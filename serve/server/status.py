"""Errors the embedded server answers with, in TF Serving's words, for gRPC and REST alike.

A refused request is a ServingError: a gRPC status code and TF Serving's message. gRPC
sends it as the call's status; REST as ``{"error": message}`` with the HTTP status TF
Serving maps the code to (model_servers/http_rest_api_handler.cc's ToHTTPStatusCode).
A TensorFlow error raised by a graph keeps TensorFlow's message, with its code.
"""

from __future__ import annotations

import grpc
import tensorflow as tf

#: TF Serving's mapping of status codes to HTTP (util/net_http's ToHTTPStatusCode).
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

#: TensorFlow's error classes and the status codes they carry.
_TF_CODES = {
    tf.errors.CancelledError: grpc.StatusCode.CANCELLED,
    tf.errors.InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
    tf.errors.DeadlineExceededError: grpc.StatusCode.DEADLINE_EXCEEDED,
    tf.errors.NotFoundError: grpc.StatusCode.NOT_FOUND,
    tf.errors.AlreadyExistsError: grpc.StatusCode.ALREADY_EXISTS,
    tf.errors.PermissionDeniedError: grpc.StatusCode.PERMISSION_DENIED,
    tf.errors.ResourceExhaustedError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    tf.errors.FailedPreconditionError: grpc.StatusCode.FAILED_PRECONDITION,
    tf.errors.AbortedError: grpc.StatusCode.ABORTED,
    tf.errors.OutOfRangeError: grpc.StatusCode.OUT_OF_RANGE,
    tf.errors.UnimplementedError: grpc.StatusCode.UNIMPLEMENTED,
    tf.errors.InternalError: grpc.StatusCode.INTERNAL,
    tf.errors.UnavailableError: grpc.StatusCode.UNAVAILABLE,
    tf.errors.DataLossError: grpc.StatusCode.DATA_LOSS,
    tf.errors.UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
}


class ServingError(Exception):
    """A request TF Serving would refuse, with the code and message it would send."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    @classmethod
    def internal(cls, exc: BaseException) -> ServingError:
        """A bug of the server's: INTERNAL for this request, never the server's end."""
        return cls(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")


def from_tf_error(exc: tf.errors.OpError) -> ServingError:
    """A TensorFlow error as TF Serving returns it: its code, TensorFlow's message."""
    code = next((c for kind, c in _TF_CODES.items() if isinstance(exc, kind)), None)
    return ServingError(code or grpc.StatusCode.UNKNOWN, exc.message.strip())


def invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)
