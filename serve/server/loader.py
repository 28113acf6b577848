"""One version of a model, loaded as TF Serving loads a SavedModel bundle.

TF Serving imports the MetaGraph tagged ``serve`` into a graph of its own, restores its
variables, runs its init op (``main_op``, ``legacy_init_op`` or TF2's
``__saved_model_init_op``) with the assets, and answers a signature with Session::Run on
the tensor names its SignatureDef gives (servables/tensorflow/saved_model_bundle_factory.cc,
predict_util.cc). zoo does the same through TensorFlow's own SavedModel loader and a
session, so TF1 graph-mode exports (placeholders, tf.Example parsing, Estimator-style
classify, regress and predict signatures, assets) and TF2 ones (``tf.saved_model.save``,
Keras) load and answer alike, and the graph, not zoo, decides which tensors it takes:
a shape the signature leaves open is the graph's to accept or refuse, with TensorFlow's
own message.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2

from zoo.serve.server.status import from_tf_error, invalid

SERVE_TAG = "serve"
#: Op libraries that tensorflow_model_server is built with beyond TensorFlow's own, loaded
#: (by importing their Python packages) where they are installed: TF Text's tokenizers.
EXTRA_OP_PACKAGES = ("tensorflow_text",)
#: The files that make a folder a SavedModel (TF Serving accepts either).
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


@dataclass(frozen=True)
class SessionOptions:
    """TensorFlow's thread pools for every version's session (0: TensorFlow's choice), as
    --tensorflow_intra_op_parallelism and --tensorflow_inter_op_parallelism set them."""

    intra_op_threads: int = 0
    inter_op_threads: int = 0

    def config(self) -> config_pb2.ConfigProto:
        return config_pb2.ConfigProto(
            intra_op_parallelism_threads=self.intra_op_threads,
            inter_op_parallelism_threads=self.inter_op_threads,
            allow_soft_placement=True,
        )


@dataclass
class Version:
    """A loaded version: its signature defs, as clients see them, and a session to run them."""

    name: str
    number: int
    path: Path
    signature_defs: dict[str, meta_graph_pb2.SignatureDef]
    session: Any  # tf.compat.v1.Session
    _callables: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def run(
        self, signature: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Feed ``inputs`` (by alias) to the signature's tensors and fetch ``outputs``."""
        definition = self.signature_defs[signature]
        feeds = {definition.inputs[alias].name: value for alias, value in inputs.items()}
        fetched = self.run_tensors(feeds, [definition.outputs[a].name for a in outputs])
        return dict(zip(outputs, fetched, strict=True))

    def run_tensors(
        self, feeds: Mapping[str, np.ndarray], fetches: Sequence[str]
    ) -> list[np.ndarray]:
        """Session::Run by tensor names. A TensorFlow error becomes TF Serving's status
        code with TensorFlow's message."""
        names = sorted(feeds)
        key = (tuple(names), tuple(fetches))
        call = self._callables.get(key)
        if call is None:
            call = self._callable(names, list(fetches))
            with self._lock:
                self._callables[key] = call
        try:
            return list(call(*(feeds[name] for name in names)))
        except tf.errors.OpError as exc:
            raise from_tf_error(exc) from None
        except (TypeError, ValueError) as exc:  # numpy could not make the tensor
            raise invalid(str(exc)) from None

    def _callable(self, feeds: list[str], fetches: list[str]) -> Any:
        """A callable of the session, as Session::Run: TensorFlow checks types and shapes
        in the graph (Session.run's Python-side shape check, which TF Serving does not
        make, is not in this path)."""
        options = config_pb2.CallableOptions(feed=feeds, fetch=fetches)
        return self.session._make_callable_from_options(options)

    def close(self) -> None:
        self.session.close()


class TfliteVersion:
    """A version served from its ``model.tflite`` by the TF Lite interpreter, as TF Serving
    does with --prefer_tflite_model (servables/tensorflow/tflite_session.cc): the model's
    own signatures, or else ``serving_default`` with its tensors by name; inputs are
    resized to the shapes given. One call at a time: the interpreter is not thread-safe."""

    def __init__(self, name: str, number: int, path: Path) -> None:
        self.name, self.number, self.path = name, number, Path(path)
        self.interpreter = tf.lite.Interpreter(model_path=str(self.path / TFLITE_FILE))
        self._lock = threading.Lock()
        self._runners: dict[str, Any] = {}
        self.signature_defs = self._signature_defs()

    def _signature_defs(self) -> dict[str, meta_graph_pb2.SignatureDef]:
        listed = self.interpreter.get_signature_list()
        if listed:
            definitions = {}
            for key in listed:
                runner = self.interpreter.get_signature_runner(key)
                self._runners[key] = runner
                definitions[key] = _signature_def(
                    runner.get_input_details(), runner.get_output_details()
                )
            return definitions
        self.interpreter.allocate_tensors()
        inputs = {d["name"]: d for d in self.interpreter.get_input_details()}
        outputs = {d["name"]: d for d in self.interpreter.get_output_details()}
        return {"serving_default": _signature_def(inputs, outputs)}

    def run(
        self, signature: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        with self._lock:
            try:
                if signature in self._runners:
                    answers = self._runners[signature](**inputs)
                    return {alias: np.asarray(answers[alias]) for alias in outputs}
                return self._run_tensors(inputs, outputs)
            except (ValueError, RuntimeError) as exc:  # the interpreter's refusals
                raise invalid(str(exc)) from None

    def run_tensors(
        self, feeds: Mapping[str, np.ndarray], fetches: Sequence[str]
    ) -> list[np.ndarray]:
        names = {name.removesuffix(":0"): value for name, value in feeds.items()}
        answers = self.run("serving_default", names, [f.removesuffix(":0") for f in fetches])
        return list(answers.values())

    def _run_tensors(
        self, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        interpreter = self.interpreter
        details = {d["name"]: d for d in interpreter.get_input_details()}
        for name, value in inputs.items():
            if tuple(details[name]["shape"]) != value.shape:
                interpreter.resize_tensor_input(details[name]["index"], value.shape)
        interpreter.allocate_tensors()
        for name, value in inputs.items():
            interpreter.set_tensor(details[name]["index"], value.astype(details[name]["dtype"]))
        interpreter.invoke()
        found = {d["name"]: d["index"] for d in interpreter.get_output_details()}
        return {name: interpreter.get_tensor(found[name]).copy() for name in outputs}


def _signature_def(
    inputs: Mapping[str, Any], outputs: Mapping[str, Any]
) -> meta_graph_pb2.SignatureDef:
    """A SignatureDef for TF Lite tensors (their details by alias)."""
    signature = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    for target, tensors in ((signature.inputs, inputs), (signature.outputs, outputs)):
        for alias, detail in tensors.items():
            info = target[alias]
            info.name = detail["name"]
            info.dtype = tf.as_dtype(detail["dtype"]).as_datatype_enum
            for size in detail.get("shape_signature", detail["shape"]):
                info.tensor_shape.dim.add(size=int(size))
    return signature


TFLITE_FILE = "model.tflite"


def register_extra_ops() -> list[str]:
    """Register the extra op libraries that are installed; their names."""
    found = [name for name in EXTRA_OP_PACKAGES if importlib.util.find_spec(name) is not None]
    for name in found:
        importlib.import_module(name)
    return found


def is_saved_model(folder: Path) -> bool:
    return any((folder / name).is_file() for name in SAVED_MODEL_FILES)


def load_version(
    name: str,
    number: int,
    path: Path,
    options: SessionOptions | None = None,
    *,
    prefer_tflite: bool = False,
) -> Version | TfliteVersion:
    """Load the SavedModel at ``path`` into a session of its own and run its init op; with
    ``prefer_tflite``, its ``model.tflite`` if it has one."""
    if prefer_tflite and (Path(path) / TFLITE_FILE).is_file():
        return TfliteVersion(name, number, path)
    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph, config=(options or SessionOptions()).config())
    try:
        with graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(session, [SERVE_TAG], str(path))
    except Exception:
        session.close()
        raise
    signature_defs = dict(meta_graph.signature_def)
    return Version(name, number, Path(path), signature_defs, session)
