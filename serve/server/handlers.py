"""The requests of TF Serving's API, answered as TF Serving answers them.

Each function takes a request proto and the loaded version it names, and returns the
response proto, or raises ServingError with the status code and message TF Serving sends
for the same mistake (tensorflow_serving/servables/tensorflow/predict_util.cc,
classifier.cc, get_model_metadata_impl.cc, model_servers/get_model_status_impl.cc). The
gRPC servicers, the REST gateway and warmup all call these, so they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
)

from zoo.serve.server.loader import Version
from zoo.serve.server.status import ServingError, invalid

DEFAULT_SIGNATURE = "serving_default"
SIGNATURE_DEF_FIELD = "signature_def"
_STATES = get_model_status_pb2.ModelVersionStatus.State  # LOADING, AVAILABLE, ... by name


def model_spec(request: Any) -> tuple[str, int | None, str | None]:
    """The (name, version, label) a request's model spec names; TF Serving's errors for a
    request without one."""
    if not request.HasField("model_spec"):
        raise invalid("Missing ModelSpec")
    return servable(request.model_spec)


def servable(spec: model_pb2.ModelSpec) -> tuple[str, int | None, str | None]:
    """The (name, version, label) of a model spec (ServableRequestFromModelSpec)."""
    if not spec.name:
        raise invalid("ModelSpec has no name specified.")
    number = spec.version.value if spec.HasField("version") else None
    label = spec.version_label if spec.WhichOneof("version_choice") == "version_label" else None
    return spec.name, number, label


@dataclass
class PredictCall:
    """A checked Predict request: the signature to run, its inputs, the outputs wanted, and
    how the response carries tensors (``as_content``: see ``tensor_proto``)."""

    version: Version
    signature: str
    arguments: dict[str, np.ndarray]
    outputs: list[str]
    as_content: bool = False

    def run(self) -> dict[str, np.ndarray]:
        return self.version.run(self.signature, self.arguments, self.outputs)

    def response(self, outputs: dict[str, np.ndarray]) -> predict_pb2.PredictResponse:
        response = predict_pb2.PredictResponse(model_spec=_spec(self.version, self.signature))
        for alias in self.outputs:
            array = np.asarray(outputs[alias])
            response.outputs[alias].CopyFrom(tensor_proto(array, as_content=self.as_content))
        return response


def tensor_proto(array: np.ndarray, *, as_content: bool = False) -> tensor_pb2.TensorProto:
    """An output tensor as TF Serving sends it: in the typed repeated field of its dtype
    (float_val, int_val, ...: Tensor::AsProtoField, TF Serving's default), or as raw bytes
    in tensor_content with --enable_serialization_as_tensor_content. Strings are always
    string_val. Clients that read float_val directly depend on the default."""
    dtype = tf.as_dtype(array.dtype)
    if as_content or dtype not in _FIELDS:  # strings: string_val either way
        return tf.make_tensor_proto(array)
    proto = tensor_pb2.TensorProto(dtype=dtype.as_datatype_enum)
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    field, view = _FIELDS[dtype]
    flat = array.reshape(-1)
    getattr(proto, field).extend((flat.view(view) if view else flat).tolist())
    return proto


_FIELDS = {  # dtype: (repeated field, the numpy view its values are written as)
    tf.float32: ("float_val", None),
    tf.float64: ("double_val", None),
    tf.float16: ("half_val", np.uint16),
    tf.bfloat16: ("half_val", np.uint16),
    tf.int8: ("int_val", None),
    tf.int16: ("int_val", None),
    tf.int32: ("int_val", None),
    tf.uint8: ("int_val", None),
    tf.uint16: ("int_val", None),
    tf.int64: ("int64_val", None),
    tf.uint32: ("uint32_val", None),
    tf.uint64: ("uint64_val", None),
    tf.bool: ("bool_val", None),
    tf.complex64: ("scomplex_val", np.float32),
    tf.complex128: ("dcomplex_val", np.float64),
}


def prepare_predict(
    version: Version, request: predict_pb2.PredictRequest, *, as_content: bool = False
) -> PredictCall:
    """Check a Predict request against the version's signature, as TF Serving does."""
    name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature = version.signature_defs.get(name)
    if signature is None:
        raise ServingError(
            grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{name}" not found.'
        )
    arguments = _inputs(signature, request.inputs)
    wanted = _output_filter(signature, request.output_filter) or sorted(signature.outputs)
    return PredictCall(version, name, arguments, wanted, as_content)


def run_predict(
    version: Version, request: predict_pb2.PredictRequest, *, as_content: bool = False
) -> predict_pb2.PredictResponse:
    """Predict on one loaded version: check the inputs against the signature, run, filter."""
    checked = prepare_predict(version, request, as_content=as_content)
    return checked.response(checked.run())


def check_metadata_request(request: get_model_metadata_pb2.GetModelMetadataRequest) -> None:
    """TF Serving's checks of a metadata request, before the model is looked up."""
    if not request.HasField("model_spec"):
        raise invalid("Missing ModelSpec")
    if not request.metadata_field:
        raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
    for field in request.metadata_field:
        if field != SIGNATURE_DEF_FIELD:
            raise invalid(f"Metadata field {field} is not supported")


def metadata(
    version: Version, request: get_model_metadata_pb2.GetModelMetadataRequest
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    check_metadata_request(request)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = version.name
    response.model_spec.version.value = version.number
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for key, signature in version.signature_defs.items():
        signatures.signature_def[key].CopyFrom(signature)
    response.metadata[SIGNATURE_DEF_FIELD].Pack(signatures)
    return response


def model_status(states: list[tuple[int, Any]]) -> get_model_status_pb2.GetModelStatusResponse:
    """Every version's state, newest first (``ModelManager.status``'s pairs)."""
    response = get_model_status_pb2.GetModelStatusResponse()
    for version, state in sorted(states, reverse=True):
        entry = response.model_version_status.add(version=version, state=_STATES.Value(state.state))
        entry.status.SetInParent()  # OK, unless the version failed
        if state.error:
            entry.status.error_code = error_codes_pb2.UNKNOWN
            entry.status.error_message = state.error
    return response


# --- inputs, outputs, running --------------------------------------------------------------


def _inputs(signature: Any, given: Any) -> dict[str, np.ndarray]:
    """The request's tensors, checked against the signature as TF Serving checks them."""
    expected, sent = sorted(signature.inputs), sorted(given)
    if len(sent) != len(expected):
        extra = ",".join(sorted(set(sent) - set(expected)))
        missing = ",".join(sorted(set(expected) - set(sent)))
        raise invalid(
            f"input size does not match signature: {len(sent)}!={len(expected)} "
            f"len({{{','.join(sent)}}}) != len({{{','.join(expected)}}}). "
            f"Sent extra: {{{extra}}}. Missing but required: {{{missing}}}."
        )
    tensors = {}
    for index, alias in enumerate(expected):
        info = signature.inputs[alias]
        if alias not in given:
            raise invalid(
                f"Signature input alias: {alias}(feed name: {info.name}) not found in request "
                f"and no default value provided. Inputs expected to be in the request "
                f"{{{','.join(sent)}}}, or default input alias set: "
            )
        proto = given[alias]
        try:
            value = _array(proto)
        except Exception:
            raise invalid(f"tensor parsing error: {alias}") from None
        if proto.dtype != info.dtype:
            raise invalid(
                f"Expects arg[{index}] to be {_dtype_name(info.dtype)} but "
                f"{_dtype_name(proto.dtype)} is provided"
            )
        tensors[alias] = value  # its shape is the graph's to accept or refuse, as in TF Serving
    return tensors


def _array(proto: Any) -> Any:
    """A request tensor as numpy; a numeric tensor sent as raw bytes is read in place."""
    if proto.tensor_content and proto.dtype != types_pb2.DT_STRING:
        shape = [d.size for d in proto.tensor_shape.dim]
        dtype = tf.as_dtype(proto.dtype).as_numpy_dtype
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
    return tf.make_ndarray(proto)


def _output_filter(signature: Any, wanted: Any) -> list[str]:
    seen: set[str] = set()
    for alias in wanted:
        if alias not in signature.outputs:
            raise invalid(
                f"output tensor alias not found in signature: {alias} Outputs expected to be in "
                f"the set {{{','.join(sorted(signature.outputs))}}}."
            )
        if alias in seen:
            raise invalid(f"duplicate output tensor alias: {alias}")
        seen.add(alias)
    return list(wanted)


def _spec(version: Version, signature: str) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=version.name, signature_name=signature)
    spec.version.value = version.number
    return spec


def _dtype_name(dtype: int) -> str:
    """A dtype as TensorFlow's C++ DataTypeString writes it in TF Serving's messages."""
    if dtype == types_pb2.DT_INVALID:
        return "invalid"
    name = tf.as_dtype(dtype).name
    return {"float32": "float", "float64": "double", "float16": "half"}.get(name, name)
