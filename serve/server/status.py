"""Errors the embedded server answers with: a gRPC status code and TF Serving's message."""

from __future__ import annotations

import grpc


class ServingError(Exception):
    """A request TF Serving would refuse, with the code and message it would send."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, message)
