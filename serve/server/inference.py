"""Classify, Regress and MultiInference on ``tf.Example`` inputs, as TF Serving runs them.

The request's examples become one string tensor (with a context, each example is the
serialized context followed by the serialized example), fed to the signature's
``inputs``; the outputs are checked and turned into results with TF Serving's checks and
messages (servables/tensorflow/classifier.cc, regressor.cc, multi_inference.cc, util.cc).
Signatures are checked by their inputs and outputs, not their method name, as TF Serving
does unless --enable_signature_method_name_check is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc
import numpy as np
from google.protobuf import text_format
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    input_pb2,
    model_pb2,
    regression_pb2,
)

from zoo.serve.server.loader import Version
from zoo.serve.server.status import ServingError, invalid

DEFAULT_SIGNATURE = "serving_default"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
SignatureDef = meta_graph_pb2.SignatureDef


def serialized_examples(given: input_pb2.Input) -> np.ndarray:
    """The request's examples as one string tensor (util.cc's InputToSerializedExampleTensor)."""
    kind = given.WhichOneof("kind")
    if kind == "example_list_with_context":
        listed = given.example_list_with_context
        context = listed.context.SerializeToString()
        values = [context + example.SerializeToString() for example in listed.examples]
    elif kind == "example_list":
        values = [example.SerializeToString() for example in given.example_list.examples]
    elif kind is None:
        values = []
    else:
        raise ServingError(grpc.StatusCode.UNIMPLEMENTED, f"Input with kind {kind} not supported.")
    if not values:
        raise invalid("Input is empty.")
    return np.array(values, dtype=object)


def _debug(signature: SignatureDef) -> str:
    return text_format.MessageToString(signature)


def _signature(version: Version, spec: model_pb2.ModelSpec) -> tuple[str, SignatureDef]:
    name = spec.signature_name or DEFAULT_SIGNATURE
    signature = version.signature_defs.get(name)
    if signature is None:
        raise invalid(f"No signature was found with the name: {name}")
    return name, signature


def classification_tensors(signature: SignatureDef) -> tuple[str, list[str]]:
    """The input tensor and the classes/scores output tensors (PreProcessClassification)."""
    if len(signature.inputs) != 1:
        raise invalid("Expected one input Tensor.")
    if len(signature.outputs) not in (1, 2):
        raise invalid(f"Expected one or two output Tensors, found {len(signature.outputs)}")
    if "inputs" not in signature.inputs:
        raise invalid(f"No classification inputs found in SignatureDef: {_debug(signature)}")
    outputs = [signature.outputs[k].name for k in ("classes", "scores") if k in signature.outputs]
    if not outputs:
        raise invalid(
            'Expected classification signature outputs to contain at least one of "classes" '
            f'or "scores". Signature was: {_debug(signature)}'
        )
    return signature.inputs["inputs"].name, outputs


def regression_tensors(signature: SignatureDef) -> tuple[str, list[str]]:
    """The input tensor and the output tensor (PreProcessRegression)."""
    if len(signature.inputs) != 1:
        raise invalid("Expected one input Tensor.")
    if len(signature.outputs) != 1:
        raise invalid("Expected one output Tensor.")
    if "inputs" not in signature.inputs:
        raise invalid(f"No regression inputs found in SignatureDef: {_debug(signature)}")
    if "outputs" not in signature.outputs:
        raise invalid(f"No regression outputs found in SignatureDef: {_debug(signature)}")
    return signature.inputs["inputs"].name, [signature.outputs["outputs"].name]


def _shape(array: np.ndarray) -> str:
    return "[" + ",".join(str(d) for d in array.shape) + "]"


def _dtype_name(array: np.ndarray) -> str:
    if array.dtype == object:
        return "DT_STRING"
    return types_pb2.DataType.Name(_DTYPES.get(array.dtype.str[1:], types_pb2.DT_INVALID))


_DTYPES = {
    "f4": types_pb2.DT_FLOAT, "f8": types_pb2.DT_DOUBLE, "f2": types_pb2.DT_HALF,
    "i4": types_pb2.DT_INT32, "i8": types_pb2.DT_INT64, "i2": types_pb2.DT_INT16,
    "i1": types_pb2.DT_INT8, "u1": types_pb2.DT_UINT8, "b1": types_pb2.DT_BOOL,
}  # fmt: skip


def classification_result(
    signature: SignatureDef, examples: int, fetched: dict[str, np.ndarray]
) -> classification_pb2.ClassificationResult:
    """The outputs as a ClassificationResult, checked (PostProcessClassificationResult)."""
    classes = (
        fetched.get(signature.outputs["classes"].name) if "classes" in signature.outputs else None
    )
    scores = (
        fetched.get(signature.outputs["scores"].name) if "scores" in signature.outputs else None
    )
    for name, array, dtype in (("classes", classes, "DT_STRING"), ("scores", scores, "DT_FLOAT")):
        if array is None:
            continue
        if array.ndim != 2:
            raise invalid(
                f"Expected Tensor shape: [batch_size num_classes] but got {_shape(array)}"
            )
        if _dtype_name(array) != dtype:
            raise invalid(f"Expected {name} Tensor of {dtype}. Got: {_dtype_name(array)}")
        if array.shape[0] != examples:
            raise invalid(f"Expected {name} output batch size of {examples}. Got: {array.shape[0]}")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise invalid(
            "Tensors class and score should match in dim_size(1). Got "
            f"{classes.shape[1]} vs. {scores.shape[1]}"
        )
    count = (classes if classes is not None else scores).shape[1]
    result = classification_pb2.ClassificationResult()
    for row in range(examples):
        classifications = result.classifications.add()
        for column in range(count):
            entry = classifications.classes.add()
            if classes is not None:
                label = classes[row, column]
                entry.label = (
                    label.decode("utf-8", "replace") if isinstance(label, bytes) else label
                )
            if scores is not None:
                entry.score = float(scores[row, column])
    return result


def regression_result(
    signature: SignatureDef, examples: int, fetched: dict[str, np.ndarray]
) -> regression_pb2.RegressionResult:
    """The output as a RegressionResult, checked (PostProcessRegressionResult)."""
    values = fetched[signature.outputs["outputs"].name]
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
        raise invalid(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but "
            f"got {_shape(values)}"
        )
    if values.shape[0] != examples:
        raise invalid(
            f"Input batch size did not match output batch size: {examples} vs. {values.shape[0]}"
        )
    if _dtype_name(values) != "DT_FLOAT":
        raise invalid(f"Expected output Tensor of DT_FLOAT.  Got: {_dtype_name(values)}")
    result = regression_pb2.RegressionResult()
    for value in values.reshape(-1):
        result.regressions.add(value=float(value))
    return result


def _run(
    version: Version, inputs: set[str], outputs: Sequence[str], examples: np.ndarray
) -> dict[str, np.ndarray]:
    fetches = sorted(set(outputs))
    values = version.run_tensors({name: examples for name in inputs}, fetches)
    return dict(zip(fetches, values, strict=True))


def _spec(version: Version, signature: str) -> model_pb2.ModelSpec:
    answer = model_pb2.ModelSpec(name=version.name, signature_name=signature)
    answer.version.value = version.number
    return answer


def classify(
    version: Version, request: classification_pb2.ClassificationRequest
) -> classification_pb2.ClassificationResponse:
    spec, result = _one_signature(version, request, classification_tensors, classification_result)
    return classification_pb2.ClassificationResponse(model_spec=spec, result=result)


def regress(
    version: Version, request: regression_pb2.RegressionRequest
) -> regression_pb2.RegressionResponse:
    spec, result = _one_signature(version, request, regression_tensors, regression_result)
    return regression_pb2.RegressionResponse(model_spec=spec, result=result)


def _one_signature(
    version: Version,
    request: Any,
    tensors: Callable[[SignatureDef], tuple[str, list[str]]],
    result: Callable[[SignatureDef, int, dict[str, np.ndarray]], Any],
) -> tuple[model_pb2.ModelSpec, Any]:
    """Run the request's signature on its examples; the response's spec and result."""
    name, signature = _signature(version, request.model_spec)
    input_name, outputs = tensors(signature)
    examples = serialized_examples(request.input)
    fetched = _run(version, {input_name}, outputs, examples)
    return _spec(version, name), result(signature, len(examples), fetched)


def check_multi_inference(request: inference_pb2.MultiInferenceRequest) -> str:
    """The one model all tasks name (TensorFlowMultiInferenceRunner's first checks)."""
    model = ""
    for task in request.tasks:
        if not task.model_spec.name:
            raise invalid("Found ModelSpec with an empty model name.")
        if model and task.model_spec.name != model:
            raise invalid(
                "All ModelSpecs in a MultiInferenceRequest must access the same model name."
            )
        model = task.model_spec.name
    return model


def multi_inference(
    version: Version, request: inference_pb2.MultiInferenceRequest
) -> inference_pb2.MultiInferenceResponse:
    """Several classify and regress signatures on the same examples, in one run."""
    check_multi_inference(request)
    inputs: set[str] = set()
    outputs: list[str] = []
    seen: set[str] = set()
    for task in request.tasks:
        name = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if name in seen:
            raise invalid(f"Duplicate evaluation of signature: {name}")
        seen.add(name)
        signature = version.signature_defs.get(name)
        if signature is None:
            raise invalid(f"Requested signature not found in model graph: {name}")
        if task.method_name == CLASSIFY_METHOD:
            input_name, names = classification_tensors(signature)
        elif task.method_name == REGRESS_METHOD:
            input_name, names = regression_tensors(signature)
        else:
            raise ServingError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"Unsupported signature method_name: {task.method_name}",
            )
        inputs.add(input_name)
        outputs += names
    examples = serialized_examples(request.input)
    fetched = _run(version, inputs, outputs, examples)
    response = inference_pb2.MultiInferenceResponse()
    for task in request.tasks:
        name = task.model_spec.signature_name or DEFAULT_SIGNATURE
        signature = version.signature_defs[name]
        result = response.results.add()
        if task.method_name == CLASSIFY_METHOD:
            result.classification_result.CopyFrom(
                classification_result(signature, len(examples), fetched)
            )
        else:
            result.regression_result.CopyFrom(regression_result(signature, len(examples), fetched))
        result.model_spec.CopyFrom(_spec(version, name))
    return response
