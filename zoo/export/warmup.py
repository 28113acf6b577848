"""Warmup records: requests TF Serving replays before a version takes traffic.

TF Serving reads ``assets.extra/tf_serving_warmup_requests``, a TFRecord file of
``PredictionLog`` protos, and runs each one as the version loads, so the first real
request does not pay for graph optimisation and memory allocation. One record per
signature, each a batch of real validation images, as the SavedModel warmup guide
describes (tensorflow/serving, g3doc/saved_model_warmup.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    model_pb2,
    predict_pb2,
    prediction_log_pb2,
    regression_pb2,
)

from zoo.export.manifest import IMAGE_FEATURE
from zoo.fs import atomic_file


def write_warmup(
    path: Path,
    *,
    model_name: str,
    signatures: list[str],
    encoded: list[bytes],
    pixels: np.ndarray,
) -> int:
    """Write one request per signature; returns how many records were written.

    ``encoded`` are image files' bytes (for the bytes signatures), ``pixels`` the same
    images as float arrays [batch, H, W, C] (for ``predict_images``).
    """
    records = []
    for name in signatures:
        spec = model_pb2.ModelSpec(name=model_name, signature_name=name)
        if name in ("classify", "regress"):
            request = (
                classification_pb2.ClassificationRequest(model_spec=spec)
                if name == "classify"
                else regression_pb2.RegressionRequest(model_spec=spec)
            )
            for data in encoded:
                example = request.input.example_list.examples.add()
                example.features.feature[IMAGE_FEATURE].bytes_list.value.append(data)
            log = (
                prediction_log_pb2.PredictionLog(
                    classify_log=prediction_log_pb2.ClassifyLog(request=request)
                )
                if name == "classify"
                else prediction_log_pb2.PredictionLog(
                    regress_log=prediction_log_pb2.RegressLog(request=request)
                )
            )
        else:
            request = predict_pb2.PredictRequest(model_spec=spec)
            takes_bytes = name == "serving_default" and encoded
            value = np.array(encoded, dtype=object) if takes_bytes else pixels.astype("float32")
            request.inputs["images"].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
        records.append(log.SerializeToString())
    with atomic_file(path) as partial, tf.io.TFRecordWriter(str(partial)) as writer:
        for record in records:
            writer.write(record)
    return len(records)
