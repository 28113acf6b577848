"""TF Serving's batching, monitoring and SSL config messages, which its pip package lacks.

``tensorflow-serving-api`` ships the model server config protos but not
``BatchingParameters`` (session_bundle_config.proto), ``MonitoringConfig``
(monitoring_config.proto) or ``SSLConfig`` (ssl_config.proto). Their schemas are declared
here, field for field under TF Serving's names, so the files are written and read with
protobuf's own ``text_format`` in the text format ``tensorflow_model_server`` reads.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

PACKAGE = "tensorflow.serving"
_FIELD = descriptor_pb2.FieldDescriptorProto

#: (message, [(field, number, type, label, type_name)])
_MESSAGES = {
    "BatchingParameters": [
        ("max_batch_size", 1, _FIELD.TYPE_MESSAGE, _FIELD.LABEL_OPTIONAL, ".google.protobuf.Int64Value"),
        ("batch_timeout_micros", 2, _FIELD.TYPE_MESSAGE, _FIELD.LABEL_OPTIONAL, ".google.protobuf.Int64Value"),
        ("thread_pool_name", 3, _FIELD.TYPE_MESSAGE, _FIELD.LABEL_OPTIONAL, ".google.protobuf.StringValue"),
        ("num_batch_threads", 4, _FIELD.TYPE_MESSAGE, _FIELD.LABEL_OPTIONAL, ".google.protobuf.Int64Value"),
        ("max_enqueued_batches", 5, _FIELD.TYPE_MESSAGE, _FIELD.LABEL_OPTIONAL, ".google.protobuf.Int64Value"),
        ("allowed_batch_sizes", 6, _FIELD.TYPE_INT64, _FIELD.LABEL_REPEATED, None),
        ("pad_variable_length_inputs", 7, _FIELD.TYPE_BOOL, _FIELD.LABEL_OPTIONAL, None),
        ("enable_large_batch_splitting", 8, _FIELD.TYPE_MESSAGE, _FIELD.LABEL_OPTIONAL, ".google.protobuf.BoolValue"),
        ("max_execution_batch_size", 9, _FIELD.TYPE_MESSAGE, _FIELD.LABEL_OPTIONAL, ".google.protobuf.Int64Value"),
    ],
    "PrometheusConfig": [
        ("enable", 1, _FIELD.TYPE_BOOL, _FIELD.LABEL_OPTIONAL, None),
        ("path", 2, _FIELD.TYPE_STRING, _FIELD.LABEL_OPTIONAL, None),
    ],
    "MonitoringConfig": [
        ("prometheus_config", 1, _FIELD.TYPE_MESSAGE, _FIELD.LABEL_OPTIONAL, f".{PACKAGE}.PrometheusConfig"),
    ],
    "SSLConfig": [
        ("server_key", 1, _FIELD.TYPE_STRING, _FIELD.LABEL_OPTIONAL, None),
        ("server_cert", 2, _FIELD.TYPE_STRING, _FIELD.LABEL_OPTIONAL, None),
        ("custom_ca", 3, _FIELD.TYPE_STRING, _FIELD.LABEL_OPTIONAL, None),
        ("client_verify", 4, _FIELD.TYPE_BOOL, _FIELD.LABEL_OPTIONAL, None),
    ],
}  # fmt: skip


def _build() -> dict[str, type]:
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(
        descriptor_pb2.FileDescriptorProto.FromString(
            wrappers_pb2.DESCRIPTOR.serialized_pb
        ).SerializeToString()
    )
    file = descriptor_pb2.FileDescriptorProto(
        name="zoo/serve/tf_serving_configs.proto",
        package=PACKAGE,
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    for name, fields in _MESSAGES.items():
        message = file.message_type.add(name=name)
        for field, number, kind, label, type_name in fields:
            entry = message.field.add(name=field, number=number, type=kind, label=label)
            if type_name:
                entry.type_name = type_name
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
        for name in _MESSAGES
    }


_CLASSES = _build()
BatchingParameters = _CLASSES["BatchingParameters"]
MonitoringConfig = _CLASSES["MonitoringConfig"]
SSLConfig = _CLASSES["SSLConfig"]
