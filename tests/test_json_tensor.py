"""TF Serving's util/json_tensor_test.cc, case for case, on zoo.serve.server.json_tensor.

Each upstream TEST keeps its name in snake_case; the typed ClassifyRegressRequestTest cases
run once per request type. Protos compare as upstream compares them (EqualsProto: the same
serialized bytes; MessageDifferencer where upstream uses it), JSON by parsing both sides
(CompareJson), with numbers kept as their text where upstream does
(CompareJsonAllValuesAsStrings). A few checks of this port's own follow at the end.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Mapping

import grpc
import numpy as np
import pytest
from google.protobuf import text_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import classification_pb2, predict_pb2, regression_pb2

from zoo.serve.server import json_tensor
from zoo.serve.server.json_tensor import JsonPredictRequestFormat
from zoo.serve.server.status import ServingError, invalid

TensorInfoMap = dict[str, meta_graph_pb2.TensorInfo]
TensorMap = dict[str, tensor_pb2.TensorProto]


def getmap(infomap: TensorInfoMap) -> Callable[[str], Mapping[str, meta_graph_pb2.TensorInfo]]:
    return lambda signature_name: infomap


def tensor_info(text: str) -> meta_graph_pb2.TensorInfo:
    return text_format.Parse(text, meta_graph_pb2.TensorInfo())


def tensor(text: str) -> tensor_pb2.TensorProto:
    return text_format.Parse(text, tensor_pb2.TensorProto())


def fill_predict(
    body: str, infomap: TensorInfoMap, req: predict_pb2.PredictRequest
) -> JsonPredictRequestFormat:
    return json_tensor.fill_predict_request_from_json(body, getmap(infomap), req)


def assert_equals_proto(actual: Message, expected_text: str) -> None:
    """test_util's EqualsProto: the same bytes as the expected text's proto."""
    expected = text_format.Parse(expected_text, type(actual)())
    assert actual.SerializeToString() == expected.SerializeToString(), (
        f"got:\n{actual}\nexpected:\n{expected}"
    )


def assert_invalid_argument(call: Callable[[], object], substring: str) -> None:
    with pytest.raises(ServingError) as caught:
        call()
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT, caught.value.message
    assert substring in caught.value.message


def compare_json(json1: str, json2: str) -> None:
    """CompareJson: both documents parsed; numbers compare by value (1 equals 1.0)."""
    assert json.loads(json1) == json.loads(json2), f"JSON1: {json1} JSON2: {json2}"


def compare_json_all_values_as_strings(json1: str, json2: str) -> None:
    """CompareJsonAllValuesAsStrings: numbers (NaN and Infinity too) compare as written."""

    def parse(text: str) -> object:
        return json.loads(text, parse_float=str, parse_int=str, parse_constant=str)

    assert parse(json1) == parse(json2), f"JSON1: {json1} JSON2: {json2}"


def assert_approximately_equal(actual: Message, expected: Message, nan_equal: bool) -> None:
    """MessageDifferencer with APPROXIMATE float comparison (and treat_nan_as_equal)."""
    assert _messages_match(actual, expected, nan_equal), f"got:\n{actual}\nexpected:\n{expected}"


def _messages_match(a: Message, b: Message, nan_equal: bool) -> bool:
    fields_a, fields_b = a.ListFields(), b.ListFields()
    if [f.name for f, _ in fields_a] != [f.name for f, _ in fields_b]:
        return False
    for (field, value_a), (_, value_b) in zip(fields_a, fields_b, strict=True):
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            if set(value_a) != set(value_b) or not all(
                _values_match(value_field, value_a[k], value_b[k], nan_equal) for k in value_a
            ):
                return False
        elif field.is_repeated:
            if len(value_a) != len(value_b) or not all(
                _values_match(field, x, y, nan_equal) for x, y in zip(value_a, value_b, strict=True)
            ):
                return False
        elif not _values_match(field, value_a, value_b, nan_equal):
            return False
    return True


def _values_match(field: FieldDescriptor, x: object, y: object, nan_equal: bool) -> bool:
    if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        return _messages_match(x, y, nan_equal)
    if field.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        if math.isnan(x) or math.isnan(y):
            return nan_equal and math.isnan(x) and math.isnan(y)
        margin = 32 * float(np.finfo(np.float32).eps)  # MathUtil::AlmostEquals for float
        return x == y or math.isclose(x, y, rel_tol=margin, abs_tol=margin)
    return x == y


def test_single_unnamed_tensor():
    infomap = {"default": tensor_info("dtype: DT_INT32")}
    req = predict_pb2.PredictRequest()
    format = fill_predict(
        """
    {
      "instances": [[1,2],[3,4],[5,6]]
    }""",
        infomap,
        req,
    )
    tmap = req.inputs
    assert len(tmap) == 1
    assert format == JsonPredictRequestFormat.ROW
    assert_equals_proto(
        tmap["default"],
        """
    dtype: DT_INT32
    tensor_shape {
      dim { size: 3 }
      dim { size: 2 }
    }
    int_val: 1
    int_val: 2
    int_val: 3
    int_val: 4
    int_val: 5
    int_val: 6
    """,
    )


def test_deeply_nested_well_formed():
    infomap = {"default": tensor_info("dtype: DT_INT32")}
    req = predict_pb2.PredictRequest()
    json_req = '{"instances":[1], "nested":' + "[" * 500000 + "]" * 500000 + "}"
    fill_predict(json_req, infomap, req)
    assert len(req.inputs) == 1


def test_deeply_nested_malformed():
    infomap = {"default": tensor_info("dtype: DT_INT32")}
    req = predict_pb2.PredictRequest()
    json_req = '{"signature_name":' + "[" * 500000 + "]" * 500000 + "}"
    assert_invalid_argument(
        lambda: fill_predict(json_req, infomap, req), "key must be a string value"
    )


def test_mixed_input_for_float_tensor():
    infomap = {"default": tensor_info("dtype: DT_FLOAT")}
    req = predict_pb2.PredictRequest()
    format = fill_predict(
        """
    {
      "instances": [1, 2.0, 3, 4, 5.003, 0.007, 0.0]
    }""",
        infomap,
        req,
    )
    tmap = req.inputs
    assert len(tmap) == 1
    assert format == JsonPredictRequestFormat.ROW
    assert_equals_proto(
        tmap["default"],
        """
                dtype: DT_FLOAT
                tensor_shape { dim { size: 7 } }
                float_val: 1
                float_val: 2.0
                float_val: 3
                float_val: 4
                float_val: 5.003
                float_val: 0.007
                float_val: 0.0
              """,
    )


def test_mixed_input_for_double_tensor():
    infomap = {"default": tensor_info("dtype: DT_DOUBLE")}
    req = predict_pb2.PredictRequest()
    format = fill_predict(
        """
    {
      "instances": [1.0, 2, 3, 4, 0.662, 0, 0.0]
    }""",
        infomap,
        req,
    )
    tmap = req.inputs
    assert len(tmap) == 1
    assert format == JsonPredictRequestFormat.ROW
    assert_equals_proto(
        tmap["default"],
        """
                dtype: DT_DOUBLE
                tensor_shape { dim { size: 7 } }
                double_val: 1.0
                double_val: 2
                double_val: 3
                double_val: 4
                double_val: 0.662
                double_val: 0
                double_val: 0.0
              """,
    )


def test_float_tensor_with_precision_loss():
    # b/181409782: 1435774380 and 1435774380.0 behave the same way for a DT_FLOAT input;
    # both are accepted, and both lose precision.
    infomap = {"default": tensor_info("dtype: DT_FLOAT")}
    req = predict_pb2.PredictRequest()
    format = fill_predict(
        """
    {
      "instances": [1435774380]
    }""",
        infomap,
        req,
    )
    tmap = req.inputs
    assert len(tmap) == 1
    assert format == JsonPredictRequestFormat.ROW
    assert_equals_proto(
        tmap["default"],
        """
                dtype: DT_FLOAT
                tensor_shape { dim { size: 1 } }
                float_val: 1435774380
              """,
    )

    # Now add a decimal point to the end, and expect exactly the same behavior.
    format = fill_predict(
        """
    {
      "instances": [1435774380.0]
    }""",
        infomap,
        req,
    )
    tmap = req.inputs
    assert len(tmap) == 1
    assert format == JsonPredictRequestFormat.ROW
    assert_equals_proto(
        tmap["default"],
        """
                dtype: DT_FLOAT
                tensor_shape { dim { size: 1 } }
                float_val: 1435774380.0
              """,
    )


def substitute(value: float) -> str:
    """absl::Substitute("$0", double): six significant digits, as printf's %g."""
    return f'{{ "instances": [{value:g}] }}'


def test_float_tensor_that_exceeds_max_returns_inf():
    infomap = {"default": tensor_info("dtype: DT_FLOAT")}
    req = predict_pb2.PredictRequest()
    format = fill_predict(substitute(sys.float_info.max), infomap, req)
    tmap = req.inputs
    assert len(tmap) == 1
    assert format == JsonPredictRequestFormat.ROW
    assert_equals_proto(
        tmap["default"],
        """
                dtype: DT_FLOAT
                tensor_shape { dim { size: 1 } }
                float_val: inf
              """,
    )

    # Test for minimum, too (gets converted to -inf)
    format = fill_predict(substitute(-sys.float_info.max), infomap, req)
    tmap = req.inputs
    assert len(tmap) == 1
    assert format == JsonPredictRequestFormat.ROW
    assert_equals_proto(
        tmap["default"],
        """
                dtype: DT_FLOAT
                tensor_shape { dim { size: 1 } }
                float_val: -inf
              """,
    )


def test_float_tensor_that_exceeds_min_returns_zero():
    infomap = {"default": tensor_info("dtype: DT_FLOAT")}
    req = predict_pb2.PredictRequest()
    format = fill_predict(substitute(sys.float_info.min), infomap, req)
    tmap = req.inputs
    assert len(tmap) == 1
    assert format == JsonPredictRequestFormat.ROW
    assert_equals_proto(
        tmap["default"],
        """
                dtype: DT_FLOAT
                tensor_shape { dim { size: 1 } }
                float_val: 0
              """,
    )

    # Test for minimum, too (gets converted to -0)
    format = fill_predict(substitute(-sys.float_info.min), infomap, req)
    tmap = req.inputs
    assert len(tmap) == 1
    assert format == JsonPredictRequestFormat.ROW
    assert_equals_proto(
        tmap["default"],
        """
                dtype: DT_FLOAT
                tensor_shape { dim { size: 1 } }
                float_val: -0
              """,
    )


def test_single_unnamed_tensor_with_signature():
    infomap = {"default": tensor_info("dtype: DT_INT32")}
    req = predict_pb2.PredictRequest()
    format = fill_predict(
        """
    {
      "signature_name": "predict_images",
      "instances": [[1,2]]
    }""",
        infomap,
        req,
    )
    assert req.model_spec.signature_name == "predict_images"
    tmap = req.inputs
    assert len(tmap) == 1
    assert format == JsonPredictRequestFormat.ROW
    assert_equals_proto(
        tmap["default"],
        """
    dtype: DT_INT32
    tensor_shape {
      dim { size: 1 }
      dim { size: 2 }
    }
    int_val: 1
    int_val: 2
    """,
    )


def test_tensor_from_non_null_terminated_buffer():
    infomap = {"default": tensor_info("dtype: DT_INT32")}
    # Note, last character is a 'X' to for non-null termination.
    jsonstr = b'{"instances": [[1,2],[3,4],[5,6]]}X'
    req = predict_pb2.PredictRequest()
    # Process over a buffer that is not null terminated.
    format = json_tensor.fill_predict_request_from_json(
        jsonstr[: len(jsonstr) - 1], getmap(infomap), req
    )
    tmap = req.inputs
    assert len(tmap) == 1
    assert format == JsonPredictRequestFormat.ROW
    assert_equals_proto(
        tmap["default"],
        """
    dtype: DT_INT32
    tensor_shape {
      dim { size: 3 }
      dim { size: 2 }
    }
    int_val: 1
    int_val: 2
    int_val: 3
    int_val: 4
    int_val: 5
    int_val: 6
    """,
    )


def test_single_unnamed_tensor_base64_scalars():
    infomap = {"default": tensor_info("dtype: DT_STRING")}
    req = predict_pb2.PredictRequest()
    format = fill_predict(
        """
    {
      "instances": [ { "b64" : "aGVsbG8=" }, { "b64": "d29ybGQ=" } ]
    }""",
        infomap,
        req,
    )
    tmap = req.inputs
    assert len(tmap) == 1
    assert format == JsonPredictRequestFormat.ROW
    assert_equals_proto(
        tmap["default"],
        """
    dtype: DT_STRING
    tensor_shape {
      dim { size: 2 }
    }
    string_val: "hello"
    string_val: "world"
    """,
    )


def test_single_unnamed_tensor_base64_lists():
    infomap = {"default": tensor_info("dtype: DT_STRING")}
    req = predict_pb2.PredictRequest()
    format = fill_predict(
        """
    {
      "instances": [ [{ "b64" : "aGVsbG8=" }], [{ "b64": "d29ybGQ=" }] ]
    }""",
        infomap,
        req,
    )
    tmap = req.inputs
    assert len(tmap) == 1
    assert format == JsonPredictRequestFormat.ROW
    assert_equals_proto(
        tmap["default"],
        """
    dtype: DT_STRING
    tensor_shape {
      dim { size: 2 }
      dim { size: 1 }
    }
    string_val: "hello"
    string_val: "world"
    """,
    )


def test_single_named_tensor_base64():
    infomap = {"default": tensor_info("dtype: DT_STRING")}
    req = predict_pb2.PredictRequest()
    format = fill_predict(
        """
    {
      "instances": [
        {
          "default": [ [{ "b64" : "aGVsbG8=" }], [{ "b64": "d29ybGQ=" }] ]
        }
      ]
    }""",
        infomap,
        req,
    )
    tmap = req.inputs
    assert len(tmap) == 1
    assert format == JsonPredictRequestFormat.ROW
    assert_equals_proto(
        tmap["default"],
        """
    dtype: DT_STRING
    tensor_shape {
      dim { size: 1 }
      dim { size: 2 }
      dim { size: 1 }
    }
    string_val: "hello"
    string_val: "world"
    """,
    )


def test_multiple_named_tensor():
    # 3 named tensors with different types.
    infomap = {
        "int_tensor": tensor_info("dtype: DT_INT32"),
        "str_tensor": tensor_info("dtype: DT_STRING"),
        "float_tensor": tensor_info("dtype: DT_FLOAT"),
        "dbl_tensor": tensor_info("dtype: DT_DOUBLE"),
    }
    req = predict_pb2.PredictRequest()
    format = fill_predict(
        """
    {
      "instances": [
        {
          "int_tensor": [[1,2],[3,4],[5,6]],
          "str_tensor": ["foo", "bar"],
          "float_tensor": [1.0, NaN],
          "dbl_tensor": [NaN]
        },
        {
          "int_tensor": [[7,8],[9,0],[1,2]],
          "str_tensor": ["baz", "bat"],
          "float_tensor": [2.0, Infinity],
          "dbl_tensor": [2.0]
        }
      ]
    }""",
        infomap,
        req,
    )
    tmap = req.inputs
    assert len(tmap) == 4
    assert format == JsonPredictRequestFormat.ROW
    assert_equals_proto(
        tmap["int_tensor"],
        """
    dtype: DT_INT32
    tensor_shape {
      dim { size: 2 }
      dim { size: 3 }
      dim { size: 2 }
    }
    int_val: 1
    int_val: 2
    int_val: 3
    int_val: 4
    int_val: 5
    int_val: 6
    int_val: 7
    int_val: 8
    int_val: 9
    int_val: 0
    int_val: 1
    int_val: 2
    """,
    )
    assert_equals_proto(
        tmap["str_tensor"],
        """
    dtype: DT_STRING
    tensor_shape {
      dim { size: 2 }
      dim { size: 2 }
    }
    string_val: "foo"
    string_val: "bar"
    string_val: "baz"
    string_val: "bat"
    """,
    )
    assert_equals_proto(
        tmap["float_tensor"],
        """
                dtype: DT_FLOAT
                tensor_shape {
                  dim { size: 2 }
                  dim { size: 2 }
                }
                float_val: 1.0
                float_val: NaN
                float_val: 2.0
                float_val: Infinity
              """,
    )
    assert_equals_proto(
        tmap["dbl_tensor"],
        """
                dtype: DT_DOUBLE
                tensor_shape {
                  dim { size: 2 }
                  dim { size: 1 }
                }
                double_val: NaN
                double_val: 2.0
              """,
    )


def test_single_unnamed_tensor_columnar_format():
    infomap = {"int_tensor": tensor_info("dtype: DT_INT32")}
    req = predict_pb2.PredictRequest()
    format = fill_predict(
        """
    {
      "inputs": {
        "int_tensor": [[[1,2],[3,4],[5,6]]]
      }
    }""",
        infomap,
        req,
    )
    tmap = req.inputs
    assert len(tmap) == 1
    assert format == JsonPredictRequestFormat.COLUMNAR
    assert_equals_proto(
        tmap["int_tensor"],
        """
                dtype: DT_INT32
                tensor_shape {
                  dim { size: 1 }
                  dim { size: 3 }
                  dim { size: 2 }
                }
                int_val: 1
                int_val: 2
                int_val: 3
                int_val: 4
                int_val: 5
                int_val: 6
              """,
    )

    #
    # Skip explicitly specifying named input.
    #
    req.Clear()
    format = fill_predict(
        """
    {
      "inputs": [[[1,2],[3,4],[5,6]]]
    }""",
        infomap,
        req,
    )
    tmap2 = req.inputs
    assert len(tmap2) == 1
    assert format == JsonPredictRequestFormat.COLUMNAR
    assert_equals_proto(
        tmap2["int_tensor"],
        """
                dtype: DT_INT32
                tensor_shape {
                  dim { size: 1 }
                  dim { size: 3 }
                  dim { size: 2 }
                }
                int_val: 1
                int_val: 2
                int_val: 3
                int_val: 4
                int_val: 5
                int_val: 6
              """,
    )


def test_multiple_named_tensor_columnar_format():
    # 3 named tensors with different types.
    infomap = {
        "int_tensor": tensor_info("dtype: DT_INT32"),
        "str_tensor": tensor_info("dtype: DT_STRING"),
        "bin_tensor": tensor_info("dtype: DT_STRING"),
    }
    req = predict_pb2.PredictRequest()
    format = fill_predict(
        """
    {
      "inputs": {
        "int_tensor": [[[1,2],[3,4],[5,6]]],
        "str_tensor": ["foo", "bar"],
        "bin_tensor": { "b64" : "aGVsbG8=" }
      }
    }""",
        infomap,
        req,
    )
    tmap = req.inputs
    assert len(tmap) == 3
    assert format == JsonPredictRequestFormat.COLUMNAR
    assert_equals_proto(
        tmap["int_tensor"],
        """
                dtype: DT_INT32
                tensor_shape {
                  dim { size: 1 }
                  dim { size: 3 }
                  dim { size: 2 }
                }
                int_val: 1
                int_val: 2
                int_val: 3
                int_val: 4
                int_val: 5
                int_val: 6
              """,
    )
    assert_equals_proto(
        tmap["str_tensor"],
        """
                dtype: DT_STRING
                tensor_shape { dim { size: 2 } }
                string_val: "foo"
                string_val: "bar"
              """,
    )
    assert_equals_proto(
        tmap["bin_tensor"],
        """
                dtype: DT_STRING
                tensor_shape {}
                string_val: "hello"
              """,
    )


def test_single_unnamed_tensor_errors():
    infomap = {"default": tensor_info("dtype: DT_INT32")}
    req = predict_pb2.PredictRequest()
    assert_invalid_argument(lambda: fill_predict("", infomap, req), "document is empty")

    assert_invalid_argument(
        lambda: fill_predict(
            """
    {
      "signature_name": 5,
      "instances": [[1,2],[3,4],[5,6,7]]
    }""",
            infomap,
            req,
        ),
        "must be a string value",
    )

    assert_invalid_argument(
        lambda: fill_predict(
            """
    {
      "instances": [[1,2],[3,4],[5,6,7]],
      "inputs": [[1,2],[3,4],[5,6,7]]
    }""",
            infomap,
            req,
        ),
        "Not formatted correctly",
    )

    assert_invalid_argument(
        lambda: fill_predict(
            """
    {
      "instances": [[1,2],[3,4],[5,6,7]]
    }""",
            infomap,
            req,
        ),
        "Expecting tensor size",
    )

    assert_invalid_argument(
        lambda: fill_predict(
            """
    {
      "instances": [[1,2],[3,4],[[5,6]]]
    }""",
            infomap,
            req,
        ),
        "Expecting shape",
    )

    assert_invalid_argument(
        lambda: fill_predict(
            """
    {
      "instances": [1, [1]]
    }""",
            infomap,
            req,
        ),
        "Expecting shape",
    )

    assert_invalid_argument(
        lambda: fill_predict(
            """
    {
      "instances": [[1,2],["a", "b"]]
    }""",
            infomap,
            req,
        ),
        "not of expected type",
    )


def test_multiple_named_tensor_errors():
    # 2 named tensors with different types.
    infomap = {
        "int_tensor": tensor_info("dtype: DT_INT32"),
        "str_tensor": tensor_info("dtype: DT_STRING"),
    }
    req = predict_pb2.PredictRequest()
    # Different shapes across int_tensor instances.
    assert_invalid_argument(
        lambda: fill_predict(
            """
    {
      "instances": [
        {
          "int_tensor": [[1,2],[3,4],[5,6]],
          "str_tensor": ["foo", "bar"]
        },
        {
          "int_tensor": [[[7,8],[9,0],[1,2]]],
          "str_tensor": ["baz", "bat"]
        }
      ]
    }""",
            infomap,
            req,
        ),
        "Expecting shape",
    )

    # Different size/length across int_tensor instances.
    req.Clear()
    assert_invalid_argument(
        lambda: fill_predict(
            """
    {
      "instances": [
        {
          "int_tensor": [[1,2],[3,4],[5,6],[7,8]],
          "str_tensor": ["foo", "bar"]
        },
        {
          "int_tensor": [[7,8],[9,0],[1,2]],
          "str_tensor": ["baz", "bat"]
        }
      ]
    }""",
            infomap,
            req,
        ),
        "Expecting tensor size",
    )

    # Mix of object and value/list in "instances" list.
    # First element is an object. Rest are expected to be objects too.
    req.Clear()
    assert_invalid_argument(
        lambda: fill_predict(
            """
    {
      "instances": [
        {
          "int_tensor": [[1,2],[3,4],[5,6]],
          "str_tensor": ["foo", "bar"]
        },
        [1, 20, 30],
        {
          "int_tensor": [[[7,8],[9,0],[1,2]]],
          "str_tensor": ["baz", "bat"]
        }
      ]
    }""",
            infomap,
            req,
        ),
        "Expecting object but got list",
    )

    # Mix of object and value/list in "instances" list.
    # First element is a list. Rest are expected to be list too.
    infomap.clear()
    infomap["str_tensor"] = tensor_info("dtype: DT_STRING")
    req.Clear()
    assert_invalid_argument(
        lambda: fill_predict(
            """
    {
      "instances": [
        ["baz", "bar"],
        {
          "str_tensor": ["baz", "bat"]
        }
      ]
    }""",
            infomap,
            req,
        ),
        "Expecting value/list but got object",
    )


def test_from_json_single_tensor():
    tensormap: TensorMap = {
        "int_tensor": tensor(
            """
    dtype: DT_INT32
    tensor_shape {
      dim { size: 2 }
      dim { size: 3 }
      dim { size: 2 }
    }
    int_val: 1
    int_val: 2
    int_val: 3
    int_val: 4
    int_val: 5
    int_val: 6
    int_val: 7
    int_val: 8
    int_val: 9
    int_val: 0
    int_val: 1
    int_val: 2
    """
        )
    }
    json_ = json_tensor.make_json_from_tensors(tensormap, JsonPredictRequestFormat.ROW)
    compare_json(
        json_,
        """{
    "predictions": [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]
    ]}""",
    )

    json_ = json_tensor.make_json_from_tensors(tensormap, JsonPredictRequestFormat.COLUMNAR)
    compare_json(
        json_,
        """{
    "outputs": [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]
    ]}""",
    )


def test_from_json_single_scalar_tensor():
    tensormap: TensorMap = {
        "int_tensor": tensor(
            """
    dtype: DT_INT32
    tensor_shape {
      dim { size: 5 }
    }
    int_val: 1
    int_val: 2
    int_val: 3
    int_val: 4
    int_val: 5
    """
        )
    }
    json_ = json_tensor.make_json_from_tensors(tensormap, JsonPredictRequestFormat.ROW)
    compare_json(json_, '{ "predictions": [1, 2, 3, 4, 5] }')

    json_ = json_tensor.make_json_from_tensors(tensormap, JsonPredictRequestFormat.COLUMNAR)
    compare_json(json_, '{ "outputs": [1, 2, 3, 4, 5] }')


def test_from_json_single_bytes_tensor():
    tensormap: TensorMap = {
        "str_tensor_bytes": tensor(
            """
    dtype: DT_STRING
    tensor_shape {
      dim { size: 2 }
      dim { size: 2 }
    }
    string_val: "hello"
    string_val: "world"
    string_val: "tf"
    string_val: "serving"
    """
        )
    }
    json_ = json_tensor.make_json_from_tensors(tensormap, JsonPredictRequestFormat.ROW)
    compare_json(
        json_,
        """{
    "predictions": [
      [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}],
      [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}]
    ]}""",
    )


# Tests StrCat() six-digit precision float output is correctly
# represented in the final (output) JSON string.
def test_from_json_single_float_tensor_six_digit_precision():
    tensormap: TensorMap = {
        "float_tensor": tensor(
            """
    dtype: DT_FLOAT
    tensor_shape {
      dim { size: 2 }
      dim { size: 3 }
    }
    float_val: 9000000
    float_val: 999999
    float_val: 0.50000
    float_val: .0003
    float_val: .00003
    float_val: 555557.5
    """
        )
    }
    json_ = json_tensor.make_json_from_tensors(tensormap, JsonPredictRequestFormat.ROW)
    compare_json_all_values_as_strings(
        json_,
        """{
    "predictions": [
      [9e+06, 999999.0, 0.5],
      [0.0003, 3e-05, 555557.5]
    ]}""",
    )


def test_from_json_single_float_tensor_non_finite():
    tensormap: TensorMap = {
        "float_tensor": tensor(
            """
    dtype: DT_FLOAT
    tensor_shape {
      dim { size: 2 }
      dim { size: 2 }
    }
    float_val: NaN
    float_val: Infinity
    float_val: 3
    float_val: -Infinity
    """
        )
    }
    json_ = json_tensor.make_json_from_tensors(tensormap, JsonPredictRequestFormat.ROW)
    compare_json_all_values_as_strings(
        json_,
        """{
    "predictions": [
      [NaN, Infinity],
      [3.0, -Infinity]
    ]}""",
    )


def test_from_json_single_tensor_errors():
    tensormap: TensorMap = {}
    assert_invalid_argument(
        lambda: json_tensor.make_json_from_tensors(tensormap, JsonPredictRequestFormat.ROW),
        "empty tensor map",
    )

    tensormap["tensor"] = tensor(
        """
    dtype: DT_COMPLEX64
    tensor_shape {
      dim { size: 2 }
    }
    scomplex_val: 1.0
    scomplex_val: 2.0
    """
    )
    assert_invalid_argument(
        lambda: json_tensor.make_json_from_tensors(tensormap, JsonPredictRequestFormat.ROW),
        "tensor type: complex64",
    )

    tensormap["tensor"] = tensor(
        """
    dtype: DT_INT32
    int_val: 1
    """
    )
    assert_invalid_argument(
        lambda: json_tensor.make_json_from_tensors(tensormap, JsonPredictRequestFormat.ROW),
        "no shape information",
    )


def test_from_json_multiple_named_tensors():
    tensormap: TensorMap = {
        "int_tensor": tensor(
            """
        dtype: DT_INT32
        tensor_shape {
          dim { size: 2 }
          dim { size: 3 }
          dim { size: 2 }
        }
        int_val: 1
        int_val: 2
        int_val: 3
        int_val: 4
        int_val: 5
        int_val: 6
        int_val: 7
        int_val: 8
        int_val: 9
        int_val: 0
        int_val: 1
        int_val: 2
        """
        ),
        "str_tensor": tensor(
            """
    dtype: DT_STRING
    tensor_shape {
      dim { size: 2 }
      dim { size: 2 }
    }
    string_val: "foo"
    string_val: "bar"
    string_val: "baz"
    string_val: "bat"
    """
        ),
        "float_tensor": tensor(
            """
    dtype: DT_FLOAT
    tensor_shape {
      dim { size: 2 }
      dim { size: 1 }
    }
    float_val: 1.0
    float_val: 2.0
    """
        ),
        "double_scalar_tensor": tensor(
            """
    dtype: DT_DOUBLE
    tensor_shape {
      dim { size: 2 }
    }
    double_val: 8.0
    double_val: 9.0
    """
        ),
        "str_tensor_bytes": tensor(
            """
    dtype: DT_STRING
    tensor_shape {
      dim { size: 2 }
      dim { size: 2 }
    }
    string_val: "hello"
    string_val: "world"
    string_val: "tf"
    string_val: "serving"
    """
        ),
    }
    json_ = json_tensor.make_json_from_tensors(tensormap, JsonPredictRequestFormat.ROW)
    compare_json(
        json_,
        """{
    "predictions": [
      {
        "double_scalar_tensor": 8.0,
        "float_tensor": [1.0],
        "int_tensor": [[1, 2], [3, 4], [5, 6]],
        "str_tensor": ["foo", "bar"],
        "str_tensor_bytes": [ {"b64": "aGVsbG8="}, {"b64": "d29ybGQ="} ]
      },
      {
        "double_scalar_tensor": 9.0,
        "float_tensor": [2.0],
        "int_tensor": [[7, 8], [9, 0], [1, 2]],
        "str_tensor": ["baz", "bat"],
        "str_tensor_bytes": [ {"b64": "dGY="}, {"b64": "c2VydmluZw=="} ]
      }
    ]}""",
    )

    json_ = json_tensor.make_json_from_tensors(tensormap, JsonPredictRequestFormat.COLUMNAR)
    compare_json(
        json_,
        """{
    "outputs": {
      "double_scalar_tensor": [8.0, 9.0],
      "float_tensor": [[1.0], [2.0]],
      "int_tensor": [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]],
      "str_tensor": [["foo", "bar"], ["baz", "bat"]],
      "str_tensor_bytes": [[{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}],
                           [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}]]
    }}""",
    )


def test_from_json_multiple_named_tensors_errors():
    tensormap: TensorMap = {
        "int_tensor": tensor(
            """
    dtype: DT_INT32
    tensor_shape {
      dim { size: 2 }
      dim { size: 3 }
    }
    int_val: 1
    int_val: 2
    int_val: 3
    int_val: 4
    int_val: 5
    int_val: 6
    """
        ),
        "str_tensor": tensor(
            """
    dtype: DT_STRING
    tensor_shape {
      dim { size: 1 }
      dim { size: 3 }
    }
    string_val: "foo"
    string_val: "bar"
    string_val: "baz"
    """
        ),
    }
    assert_invalid_argument(
        lambda: json_tensor.make_json_from_tensors(tensormap, JsonPredictRequestFormat.ROW),
        "inconsistent batch size",
    )


def test_from_json_single_zero_batch_tensor():
    tensormap: TensorMap = {
        "int_tensor": tensor(
            """
    dtype: DT_INT32
    tensor_shape {
      dim { size: 0 }
      dim { size: 2 }
    }
    """
        )
    }
    json_ = json_tensor.make_json_from_tensors(tensormap, JsonPredictRequestFormat.ROW)
    compare_json(json_, '{ "predictions": [] }')


def test_from_json_multiple_zero_batch_tensors():
    tensormap: TensorMap = {
        "str_tensor": tensor(
            """
    dtype: DT_STRING
    tensor_shape {
      dim { size: 0 }
      dim { size: 1 }
      dim { size: 2 }
    }
    """
        ),
        "float_tensor": tensor(
            """
    dtype: DT_FLOAT
    tensor_shape {
      dim { size: 0 }
      dim { size: 3 }
      dim { size: 4 }
    }
    """
        ),
    }
    json_ = json_tensor.make_json_from_tensors(tensormap, JsonPredictRequestFormat.ROW)
    compare_json(json_, '{ "predictions": [] }')


def test_from_json_multiple_zero_batch_tensors_errors():
    tensormap: TensorMap = {
        "int_tensor": tensor(
            """
    dtype: DT_INT32
    tensor_shape {
      dim { size: 0 }
      dim { size: 2 }
    }
    """
        ),
        "str_tensor": tensor(
            """
    dtype: DT_STRING
    tensor_shape {
      dim { size: 1 }
      dim { size: 2 }
    }
    string_val: "foo"
    string_val: "bar"
    """
        ),
    }
    assert_invalid_argument(
        lambda: json_tensor.make_json_from_tensors(tensormap, JsonPredictRequestFormat.ROW),
        "inconsistent batch size",
    )


# ClassifyRegressRequestTest is a typed test: each case runs for both request types.
REQUEST_TYPES = [
    pytest.param(
        classification_pb2.ClassificationRequest,
        json_tensor.fill_classification_request_from_json,
        id="ClassificationRequest",
    ),
    pytest.param(
        regression_pb2.RegressionRequest,
        json_tensor.fill_regression_request_from_json,
        id="RegressionRequest",
    ),
]


@pytest.mark.parametrize(("request_type", "fill_request"), REQUEST_TYPES)
def test_request_no_context(request_type, fill_request):
    req = request_type()
    fill_request(
        """
    {
      "examples": [
        {
          "names": [ "foo", "bar" ],
          "ratings": [ 8.0, 9.0 ],
          "age": 20
        },
        {
          "names": [ "baz" ],
          "ratings": 6.0
        }
      ]
    }""",
        req,
    )

    expected_req = text_format.Parse(
        """
    input {
      example_list {
        examples {
          features {
            feature {
              key: "names"
              value { bytes_list {
                value: "foo"
                value: "bar"
              }}
            }
            feature {
              key: "ratings"
              value { float_list {
                value: 8.0
                value: 9.0
              }}
            }
            feature {
              key: "age"
              value { int64_list {
                value: 20
              }}
            }
          }
        }
        examples {
          features {
            feature {
              key: "names"
              value { bytes_list {
                value: "baz"
              }}
            }
            feature {
              key: "ratings"
              value { float_list {
                value: 6.0
              }}
            }
          }
        }
      }
    }
  """,
        request_type(),
    )
    # MessageDifferencer::ApproximatelyEquals
    assert_approximately_equal(req, expected_req, nan_equal=False)


@pytest.mark.parametrize(("request_type", "fill_request"), REQUEST_TYPES)
def test_request_with_context_and_signature(request_type, fill_request):
    req = request_type()
    fill_request(
        """
    {
      "signature_name": "custom_signture",
      "context": {
        "query": "pizza",
        "location": [ "sfo" ]
      },
      "examples": [
        {
          "names": [ "foo", "bar" ],
          "ratings": [ 8.0, 9.0, NaN, Infinity ],
          "age": 20
        },
        {
          "names": [ "baz", { "b64": "aGVsbG8=" } ],
          "ratings": 6.0,
          "intboolmix": [ 1, true, false ]
        },
        {
          "names": "bar",
          "ratings": -Infinity
        }
      ]
    }""",
        req,
    )

    expected_req = text_format.Parse(
        """
    model_spec {
      signature_name: "custom_signture"
    }
    input {
      example_list_with_context {
        context {
          features {
            feature {
              key: "query"
              value { bytes_list {
                value: "pizza"
              }}
            }
            feature {
              key: "location"
              value { bytes_list {
                value: "sfo"
              }}
            }
          }
        }
        examples {
          features {
            feature {
              key: "names"
              value { bytes_list {
                value: "foo"
                value: "bar"
              }}
            }
            feature {
              key: "ratings"
              value { float_list {
                value: 8.0
                value: 9.0
                value: NaN
                value: Infinity
              }}
            }
            feature {
              key: "age"
              value { int64_list {
                value: 20
              }}
            }
          }
        }
        examples {
          features {
            feature {
              key: "names"
              value { bytes_list {
                value: "baz"
                value: "hello"
              }}
            }
            feature {
              key: "ratings"
              value { float_list {
                value: 6.0
              }}
            }
            feature {
              key: "intboolmix"
              value { int64_list {
                value: 1
                value: 1
                value: 0
              }}
            }
          }
        }
        examples {
          features {
            feature {
              key: "names"
              value { bytes_list {
                value: "bar"
              }}
            }
            feature {
              key: "ratings"
              value { float_list {
                value: -Infinity
              }}
            }
          }
        }

      }
    }
  """,
        request_type(),
    )
    # DefaultFieldComparator: APPROXIMATE, treat_nan_as_equal.
    assert_approximately_equal(req, expected_req, nan_equal=True)


@pytest.mark.parametrize(("request_type", "fill_request"), REQUEST_TYPES)
def test_json_errors(request_type, fill_request):
    req = request_type()
    assert_invalid_argument(
        lambda: fill_request(
            """
    {
      "signature_name": [ "hello" ],
      "examples": [ { "names": [ "foo", "bar" ] } ]
    }""",
            req,
        ),
        "'signature_name' key must be a string",
    )

    req.Clear()
    assert_invalid_argument(
        lambda: fill_request(
            """
    {
      "context": [ { "names": [ "foo", "bar" ] } ]
    }""",
            req,
        ),
        "Example must be JSON object",
    )

    req.Clear()
    assert_invalid_argument(
        lambda: fill_request(
            """
    {
      "examples": { "names": [ "foo", "bar" ] }
    }""",
            req,
        ),
        "list/array",
    )

    req.Clear()
    assert_invalid_argument(
        lambda: fill_request(
            """
    {
      "examples": [ [ { "names": [ "foo", "bar" ] } ] ]
    }""",
            req,
        ),
        "Example must be JSON object",
    )

    req.Clear()
    assert_invalid_argument(
        lambda: fill_request(
            """
    {
      "examples": [ { "names": [ 10, null ] } ]
    }""",
            req,
        ),
        "names has element with unexpected JSON type: Null",
    )

    req.Clear()
    assert_invalid_argument(
        lambda: fill_request(
            """
    {
      "examples": [ { "names": [ 10, 10.0 ] } ]
    }""",
            req,
        ),
        "feature: names expecting type: int64",
    )

    req.Clear()
    assert_invalid_argument(
        lambda: fill_request(
            """
    {
      "examples": [ { "names": [ 10, { "test": 10 } ] } ]
    }""",
            req,
        ),
        "names has element with unexpected JSON type: Object",
    )

    req.Clear()
    assert_invalid_argument(
        lambda: fill_request(
            """
    {
      "examples": [ { "names": [ [10], 20 ] } ]
    }""",
            req,
        ),
        "names has element with unexpected JSON type: Array",
    )

    req.Clear()
    assert_invalid_argument(
        lambda: fill_request(
            """
    {
      "examples": [ { "names": [ 20, 18446744073709551603 ] } ]
    }""",
            req,
        ),
        "Only int64_t is supported",
    )


def test_json_from_classification_result():
    result = text_format.Parse(
        """
    classifications {
      classes { label: "car" score: 0.2 }
      classes { label: "bike" score: 0.7 }
      classes { label: "bus" score: 0.1 }
    }
    classifications {
      classes { label: "car" score: 0.7 }
      classes { label: "bike" score: 0.1 }
      classes { label: "bus" score: 0.2 }
    }""",
        classification_pb2.ClassificationResult(),
    )
    json_ = json_tensor.make_json_from_classification_result(result)
    compare_json(
        json_,
        """{
    "results": [
      [ ["car", 0.2], ["bike", 0.7], ["bus", 0.1] ],
      [ ["car", 0.7], ["bike", 0.1], ["bus", 0.2] ]
    ]
  }""",
    )


def test_json_from_regression_result():
    result = text_format.Parse(
        """
    regressions { value: 0.2 }
    regressions { value: 0.9 }
    regressions { value: 1.0 }
    """,
        regression_pb2.RegressionResult(),
    )
    json_ = json_tensor.make_json_from_regression_result(result)
    compare_json(json_, '{ "results": [ 0.2, 0.9, 1.0 ] }')


def test_json_from_regression_result_with_non_finite():
    result = text_format.Parse(
        """
    regressions { value: 0.2 }
    regressions { value: Infinity }
    regressions { value: 1.0 }
    regressions { value: -Infinity }
    regressions { value: NaN }
    """,
        regression_pb2.RegressionResult(),
    )
    json_ = json_tensor.make_json_from_regression_result(result)
    compare_json_all_values_as_strings(
        json_, '{ "results": [ 0.2, Infinity, 1.0, -Infinity, NaN ] }'
    )


def test_json_from_result_errors():
    assert_invalid_argument(
        lambda: json_tensor.make_json_from_classification_result(
            classification_pb2.ClassificationResult()
        ),
        "empty ClassificationResults",
    )
    assert_invalid_argument(
        lambda: json_tensor.make_json_from_regression_result(regression_pb2.RegressionResult()),
        "empty RegressionResults",
    )


def test_status_ok():
    assert json_tensor.make_json_from_status(None) == ""  # absl::OkStatus(): nothing


def test_status_error():
    json_ = json_tensor.make_json_from_status(invalid('Bad key: "key"'))
    compare_json(json_, r'{ "error": "Bad key: \"key\"" }')

    json_ = json_tensor.make_json_from_status(invalid("Bad key: 'key'"))
    compare_json(json_, """{ "error": "Bad key: 'key'" }""")


# Not upstream's cases: this port's own checks of what upstream's libraries do. The expected
# parse results and messages were recorded from rapidjson 1.1.0 built with upstream's flags.


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "JSON Parse error: The document is empty"),
        (b" ", "JSON Parse error: The document is empty. at offset: 1"),
        (b"]", "JSON Parse error: The document is empty. at offset: 0"),
        (b'{"a": [1,]}', "JSON Parse error: Invalid value. at offset: 9"),
        (
            b'{"a" 1}',
            "JSON Parse error: Missing a colon after a name of object member. at offset: 5",
        ),
        (
            b'{"a": 1 "b": 2}',
            "JSON Parse error: Missing a comma or '}' after an object member. at offset: 8",
        ),
        (
            b'{"a": 01}',
            "JSON Parse error: Missing a comma or '}' after an object member. at offset: 7",
        ),
        (
            b'{"a": "\\ud800"}',
            "JSON Parse error: The surrogate pair in string is invalid. at offset: 7",
        ),
        (b'{"a": 1.}', "JSON Parse error: Miss fraction part in number. at offset: 8"),
        (b'{"a": -}', "JSON Parse error: Invalid value. at offset: 7"),
        (
            b'\xef\xbb\xbf{"a": 1e400}',
            "JSON Parse error: Number too big to be stored in double. at offset: 9",
        ),
        (b'{"a": "x\x01"}', "JSON Parse error: Invalid escape character in string. at offset: 8"),
        (b'{"a": "x', "JSON Parse error: Missing a closing quotation mark in string. at offset: 8"),
        (b"[1]", "JSON Value: [1] Is not object"),
    ],
)
def test_parse_errors_as_rapidjson(body, message):
    infomap = {"default": tensor_info("dtype: DT_FLOAT")}
    with pytest.raises(ServingError) as caught:
        json_tensor.fill_predict_request_from_json(
            body, getmap(infomap), predict_pb2.PredictRequest()
        )
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.message == message


def test_rapidjson_leniencies():
    """Text after the document is ignored, the first of duplicate keys counts, and rapidjson's
    NaN/Infinity parsing takes "NInf" for Infinity and "NaN.5" for 0.5."""
    infomap = {"default": tensor_info("dtype: DT_FLOAT")}
    req = predict_pb2.PredictRequest()
    body = '{"instances": [NaN.5, NInf, -Inf], "instances": ["ignored"]} and more'
    fill_predict(body, infomap, req)
    assert list(req.inputs["default"].float_val) == [0.5, math.inf, -math.inf]


@pytest.mark.parametrize(
    ("body", "fast"),
    [
        (
            b'{"a": [1, 2.5, -0.0, 1e-7, 12345678901234567890, -9223372036854775808], "b": null}',
            True,
        ),
        (
            b'{"x": [0.1234567890123456789, 9007199254740993.5, 1.7976931348623157e308, 4.9e-324]}',
            True,
        ),
        (
            '{"s": ["caf\u00e9", "\\u00e9", "\\udc80", "tab\\t"], "t": [true, {}, []]}'.encode(),
            True,
        ),
        (b'{"a": [18446744073709551616]}', False),  # beyond 64 bits: a double to rapidjson
        (b'{"a": "\\ud83d\\ude00"}', False),  # a high surrogate escape
        (b'{"a": 1} [ and more', True),  # what follows the document is never read
        (b'{"a": 1} \xff', False),  # but must be UTF-8 for the json module
        (b'{"a": "\xff"}', False),  # not UTF-8
        (b'{"deep": ' + b"[" * 2000 + b"]" * 2000 + b"}", False),
    ],
)
def test_fast_and_exact_parsers_agree(body, fast):
    """Python's json module (the fast path) reads what rapidjson's own parser reads, or
    leaves the document to the exact parser."""
    exact = json_tensor._parse_exact(body, 0)
    if not fast:
        with pytest.raises(json_tensor._Fallback):
            json_tensor._parse_with_json_module(body, 0)
        return
    value = json_tensor._parse_with_json_module(body, 0)
    assert repr(_plain(value)) == repr(_plain(exact))


def _plain(value: object) -> object:
    if isinstance(value, json_tensor.JsonObject):
        return [(key, _plain(v)) for key, v in value.members]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def test_response_layout():
    """rapidjson's PrettyWriter, as TF Serving's responses read: rows on one line each."""
    tensormap: TensorMap = {
        "scores": tensor(
            "dtype: DT_FLOAT tensor_shape { dim { size: 2 } dim { size: 2 } }"
            " float_val: 1 float_val: 0.1 float_val: 3 float_val: 555557.5"
        )
    }
    row = json_tensor.make_json_from_tensors(tensormap, JsonPredictRequestFormat.ROW)
    assert row == '{\n    "predictions": [[1.0, 0.1], [3.0, 555557.5]\n    ]\n}'
    columnar = json_tensor.make_json_from_tensors(tensormap, JsonPredictRequestFormat.COLUMNAR)
    assert columnar == (
        '{\n    "outputs": [\n        [\n            1.0,\n            0.1\n        ],\n'
        "        [\n            3.0,\n            555557.5\n        ]\n    ]\n}"
    )
