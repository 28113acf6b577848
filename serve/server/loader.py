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
        """Feed ``inputs`` (by alias) to the signature's tensors and fetch ``outputs``.

        A TensorFlow error becomes TF Serving's status code with TensorFlow's message.
        """
        definition = self.signature_defs[signature]
        feeds = sorted(inputs)
        key = (signature, tuple(feeds), tuple(outputs))
        call = self._callables.get(key)
        if call is None:
            call = self._callable(
                [definition.inputs[alias].name for alias in feeds],
                [definition.outputs[alias].name for alias in outputs],
            )
            with self._lock:
                self._callables[key] = call
        try:
            values = call(*(inputs[alias] for alias in feeds))
        except tf.errors.OpError as exc:
            raise from_tf_error(exc) from None
        except (TypeError, ValueError) as exc:  # numpy could not make the tensor
            raise invalid(str(exc)) from None
        return dict(zip(outputs, values, strict=True))

    def _callable(self, feeds: list[str], fetches: list[str]) -> Any:
        """A callable of the session, as Session::Run: TensorFlow checks types and shapes
        in the graph (Session.run's Python-side shape check, which TF Serving does not
        make, is not in this path)."""
        options = config_pb2.CallableOptions(feed=feeds, fetch=fetches)
        return self.session._make_callable_from_options(options)

    def close(self) -> None:
        self.session.close()


def is_saved_model(folder: Path) -> bool:
    return any((folder / name).is_file() for name in SAVED_MODEL_FILES)


def load_version(
    name: str, number: int, path: Path, options: SessionOptions | None = None
) -> Version:
    """Load the SavedModel at ``path`` into a session of its own; run its init op."""
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
