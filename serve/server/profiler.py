"""TensorFlow's profiler service on the server's gRPC port, as tensorflow_model_server has it.

TF Serving registers TSL's ProfilerService beside its own services, so TensorBoard's
"capture profile" and ``tf.profiler.experimental.client.trace`` work against the serving
address. Its Profile method traces the process for ``duration_ms`` and writes the trace
(an XSpace, ``HOST.xplane.pb``) under ``repository_root/session_id``, where the client
(on the same machine) reads it; with ``emit_xspace`` the trace also comes back in the
answer. Here the trace is TensorFlow's own profiler's (``tf.profiler.experimental``);
the messages are declared for the fields used, with TSL's field numbers
(tsl/profiler/protobuf/profiler_service.proto; other fields are kept as unknown ones).
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path

import grpc
import tensorflow as tf
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVICE = "tensorflow.ProfilerService"
_FIELD = descriptor_pb2.FieldDescriptorProto


def _messages() -> tuple[type, type]:
    file = descriptor_pb2.FileDescriptorProto(
        name="zoo/profiler_service_subset.proto", package="zoo.profiler", syntax="proto3"
    )
    fields = {
        "ProfileRequest": [
            ("duration_ms", 1, _FIELD.TYPE_UINT64),
            ("repository_root", 5, _FIELD.TYPE_STRING),
            ("session_id", 6, _FIELD.TYPE_STRING),
            ("host_name", 7, _FIELD.TYPE_STRING),
            ("emit_xspace", 9, _FIELD.TYPE_BOOL),
        ],
        "ProfileResponse": [
            ("empty_trace", 7, _FIELD.TYPE_BOOL),
            ("xspace", 8, _FIELD.TYPE_BYTES),  # a serialized XSpace, on the wire as the message
        ],
    }
    for name, declared in fields.items():
        message = file.message_type.add(name=name)
        for field_name, number, kind in declared:
            message.field.add(
                name=field_name, number=number, type=kind, label=_FIELD.LABEL_OPTIONAL
            )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    classes = message_factory.GetMessages([file], pool=pool)
    return classes["zoo.profiler.ProfileRequest"], classes["zoo.profiler.ProfileResponse"]


ProfileRequest, ProfileResponse = _messages()


class ProfilerService:
    """Profile: one trace at a time (TensorFlow's profiler is process-wide)."""

    def __init__(self) -> None:
        self._busy = threading.Lock()

    def handler(self) -> grpc.GenericRpcHandler:
        method = grpc.unary_unary_rpc_method_handler(
            self.profile,
            request_deserializer=ProfileRequest.FromString,
            response_serializer=ProfileResponse.SerializeToString,
        )
        return grpc.method_handlers_generic_handler(SERVICE, {"Profile": method})

    def profile(self, request: object, context: grpc.ServicerContext) -> object:
        if not self._busy.acquire(blocking=False):
            context.abort(grpc.StatusCode.UNAVAILABLE, "another profiling session is running")
        try:
            trace = self._trace(request.duration_ms / 1000)
        finally:
            self._busy.release()
        if trace is None:
            return ProfileResponse(empty_trace=True)
        if request.repository_root:
            folder = Path(request.repository_root) / request.session_id
            folder.mkdir(parents=True, exist_ok=True)
            host = request.host_name or socket.gethostname()
            (folder / f"{host}.xplane.pb").write_bytes(trace)
        return ProfileResponse(empty_trace=False, xspace=trace if request.emit_xspace else b"")

    def _trace(self, seconds: float) -> bytes | None:
        """The XSpace TensorFlow's profiler recorded over ``seconds``, or None."""
        with tempfile.TemporaryDirectory(prefix="zoo-profile-") as logdir:
            tf.profiler.experimental.start(logdir)
            try:
                time.sleep(seconds)
            finally:
                tf.profiler.experimental.stop()
            found = sorted(Path(logdir).rglob("*.xplane.pb"))
            return found[-1].read_bytes() if found else None
