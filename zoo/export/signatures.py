"""The SavedModel's signatures, the contract TF Serving clients call.

- ``serving_default``: encoded images (PNG or JPEG bytes, ``tf.string [batch]``), decoded,
  fitted and resized in the graph as training read them (``zoo.data.conform``);
- ``predict_images``: float pixels ``[batch, H, W, C]``, as training saw them before the
  model's own preprocessing; the default signature for FITS or multi-band models, which
  have no bytes signature;
- ``classify`` (classes and multi-label): TF Serving's Classify convention, serialized
  ``tf.Example`` protos in ``inputs`` (the image bytes under ``image/encoded``),
  ``classes`` and ``scores`` out; its method name is ``tensorflow/serving/classify``,
  which TF Serving checks;
- ``regress`` (regression and votes): the Regress convention, the same ``inputs``, one
  float per image in ``outputs`` (the first target, or the first answer's vote fraction),
  method ``tensorflow/serving/regress``.

The predict signatures return the task's outputs (``zoo.tasks``): for classes
``probabilities`` [batch, classes], the top ``k`` classes as ``top_labels`` (strings),
``top_indices`` and ``top_scores``; for regression ``predictions`` [batch, targets] and
one output per target; for multi-label ``probabilities``, ``predicted`` (0/1 at the
thresholds validation chose) and ``labels`` (their names); for votes
``concentrations``, ``fractions`` and one output of fractions per question. Every one also returns ``features`` [batch, feature_dim], the
pooled representation the head reads: a client asks for it alone with Predict's
``output_filter``, for similarity search.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from zoo.data.conform import conform, decode_encoded
from zoo.data.images import ImageGeometry
from zoo.export.manifest import IMAGE_FEATURE
from zoo.tasks import Task
from zoo.train.model import classifier_parts

CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
#: The method TF Serving checks for each signature that is not a plain Predict.
METHODS = {"classify": CLASSIFY_METHOD, "regress": REGRESS_METHOD}


@dataclass(frozen=True)
class KerasParts:
    """The Keras model and its two halves, held where TensorFlow's tracking does not look."""

    model: keras.Model
    encoder: keras.Model
    head: keras.Model


def _strings(name: str) -> tf.TensorSpec:
    """A batch of strings: encoded images, or serialized tf.Examples."""
    return tf.TensorSpec([None], tf.string, name)


class ServingModule(tf.Module):
    """The model (float32, preprocessing inside) behind the signatures, and its labels.

    ``settings`` are what the task's outputs need from the run (``Task.export_settings``:
    the number of top classes, multi-label thresholds).

    Only what the SavedModel must hold is tracked: the variables and the labels asset.
    The Keras models stay out of its object graph, where ``tf.saved_model.save`` would
    trace and store a ``serving_default`` function for each Keras model it reaches.
    """

    def __init__(
        self,
        model: keras.Model,
        task: Task,
        settings: dict[str, Any],
        labels_file: Path,
        geometry: ImageGeometry,
    ) -> None:
        super().__init__(name="zoo_serving")
        # The TensorFlow variables behind Keras 3's, tracked directly: without this the
        # SavedModel's saver restores copies the signatures never read, and loaders that
        # restore through it (TF Serving, TF1's loader) fail with "Could not find
        # variable" (keras-team/keras#20095, tensorflow/serving#2250).
        self.model_variables = [weight.value for weight in model.weights]
        self.labels_file = tf.saved_model.Asset(str(labels_file))
        self._keras = KerasParts(model, *classifier_parts(model))
        self.task = task
        self.settings = settings
        self.geometry = geometry

    def signatures(self, encoded: bool) -> dict[str, Any]:
        """The signatures to save, with the bytes ones when the model reads PNG or JPEG.

        Each is traced once, here: concrete functions, which ``tf.saved_model.save`` keeps
        as they are (a ``tf.function`` it would trace again, in its own context) and which
        the export then calls for the check's expected outputs.
        """
        height, width = self.geometry.size
        pixels = tf.TensorSpec([None, height, width, self.geometry.channels], tf.float32, "images")
        predict_images = self._trace(self._predict_images, pixels)
        if not encoded:
            return {"serving_default": predict_images, "predict_images": predict_images}
        # Classify or Regress on tf.Examples, as the task serves
        on_examples = self._classify if self.task.example_api == "classify" else self._regress
        return {
            "serving_default": self._trace(self._predict_encoded, _strings("images")),
            "predict_images": predict_images,
            self.task.example_api: self._trace(on_examples, _strings("inputs")),
        }

    @staticmethod
    def _trace(function: Any, spec: tf.TensorSpec) -> Any:
        return tf.function(function, input_signature=[spec]).get_concrete_function()

    def _predict_images(self, images: Any) -> dict[str, Any]:
        features = self._keras.encoder(images, training=False)
        outputs = self.task.serving_outputs(
            self._keras.head(features, training=False), self.settings
        )
        return {**outputs, "features": tf.cast(features, tf.float32)}

    def _predict_encoded(self, images: Any) -> dict[str, Any]:
        return self._predict_images(self._decode(images))

    def _examples_output(self, inputs: Any) -> Any:
        """The model's output for the images in serialized tf.Examples."""
        features = tf.io.parse_example(
            inputs, {IMAGE_FEATURE: tf.io.FixedLenFeature([], tf.string)}
        )
        return self._keras.model(self._decode(features[IMAGE_FEATURE]), training=False)

    def _classify(self, inputs: Any) -> dict[str, Any]:
        classes, scores = self.task.classification_outputs(
            self._examples_output(inputs), self.settings
        )
        return {"classes": classes, "scores": scores}

    def _regress(self, inputs: Any) -> dict[str, Any]:
        return {"outputs": self.task.regression_output(self._examples_output(inputs))}

    def _decode(self, images: Any) -> Any:
        height, width = self.geometry.size
        spec = tf.TensorSpec((height, width, self.geometry.channels), tf.float32)
        return tf.map_fn(
            lambda data: conform(decode_encoded(data), self.geometry),
            images,
            fn_output_signature=spec,
        )


def float32_model(model: keras.Model) -> keras.Model:
    """The model with every layer computing in float32 (a mixed-precision run, rebuilt).

    TF Serving's CPUs and most clients expect float32, and a served model should not
    depend on the precision training happened to use.
    """
    if all(_policy_name(layer) == "float32" for layer in _layers(model)):
        return model
    rebuilt = model.__class__.from_config(_float32_config(model.get_config()))
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def _layers(model: keras.Model) -> list[keras.layers.Layer]:
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(_layers(layer))
    return found


def _policy_name(layer: keras.layers.Layer) -> str:
    policy = layer.dtype_policy
    return getattr(policy, "name", str(policy))


def _float32_config(config: Any) -> Any:
    """A layer config with every dtype policy replaced by float32."""
    if isinstance(config, dict):
        if config.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
            return {**config, "config": {**config.get("config", {}), "name": "float32"}}
        return {key: _float32_config(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_float32_config(value) for value in config]
    if config == "mixed_float16" or config == "mixed_bfloat16":
        return "float32"
    return config
