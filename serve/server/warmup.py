"""Replaying a version's warmup records before it serves, as TF Serving does.

``assets.extra/tf_serving_warmup_requests`` is a TFRecord file of PredictionLog protos;
each Predict, Classify, Regress or MultiInference request in it is run once
(tensorflow_serving/servables/tensorflow/saved_model_warmup_util.cc). A missing file
means no warmup; a record that fails makes the load fail, so a broken version never
takes traffic.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from zoo.serve.server import inference
from zoo.serve.server.handlers import run_predict
from zoo.serve.server.loader import Version

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_RECORDS = 1000


def run_warmup(version: Version) -> int:
    """Run every warmup request of ``version``; returns how many ran."""
    path = Path(version.path) / WARMUP_FILE
    if not path.is_file():
        return 0
    count = 0
    for record in tf.data.TFRecordDataset(str(path)):
        count += 1
        if count > MAX_RECORDS:
            raise ValueError(
                f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}"
            )
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        kind = log.WhichOneof("log_type")
        if kind == "predict_log":
            run_predict(version, log.predict_log.request)
        elif kind == "classify_log":
            inference.classify(version, log.classify_log.request)
        elif kind == "regress_log":
            inference.regress(version, log.regress_log.request)
        elif kind == "multi_inference_log":
            inference.multi_inference(version, log.multi_inference_log.request)
        elif kind is not None:
            raise ValueError(f"Unsupported log_type for warmup: {kind}")
    return count
