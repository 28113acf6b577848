"""Keras 3 with MultiWorkerMirroredStrategy on two or more workers: two fixes.

``model.fit`` fails on a real cluster in Keras 3 (up to 3.15 at least; reported as
tensorflow/tensorflow#72388), while a cluster of one works:

1. before training, ``_maybe_symbolic_build`` averages the first batch across workers
   with ``strategy.reduce("MEAN", (x, y))``; a tuple is not a distributed value, so
   TensorFlow refuses it ("Attempt to convert a value (PerReplica...)");
2. every step, ``reduce_per_replica`` averages the scalar logs with
   ``strategy.reduce("MEAN", v, axis=0)``, and a scalar has no axis 0 ("Invalid
   reduction dimension 0 for input with 0 dimensions").

The first only needs the batch's shapes, which one worker's part has; the second needs
the mean across replicas, which ``axis=None`` gives. Both patches act only in
multi-worker mode and leave every other path to Keras. ``apply()`` is idempotent.

Both replace private functions of Keras, so ``apply()`` first checks that they are still
there with the parameters the patches take (``changed_internals``); when a Keras release
changes them, the patches are left out with a warning instead of breaking Keras, and
tests/test_cluster.py's check of the same fails, so the change is seen.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import keras
import tensorflow as tf
from keras.src.backend.tensorflow import trainer as tf_trainer

from zoo.errors import TrainingWarning

_PATCHED = "_zoo_multi_worker_patch"
#: The Keras internals patched, with the parameters the patches expect them to take.
PATCHED_INTERNALS = {
    "keras.src.backend.tensorflow.trainer.reduce_per_replica": ["values", "strategy", "reduction"],
    "keras.src.backend.tensorflow.trainer.TensorFlowTrainer._maybe_symbolic_build": [
        "self", "iterator", "data_batch",
    ],
    "keras.src.backend.tensorflow.trainer.TensorFlowTrainer._symbolic_build": [
        "self", "iterator", "data_batch",
    ],
}  # fmt: skip


def changed_internals() -> list[str]:
    """The patched internals this Keras lacks or gives other parameters; [] when all match."""
    changed = []
    for path, parameters in PATCHED_INTERNALS.items():
        target: Any = tf_trainer
        for name in path.removeprefix(tf_trainer.__name__ + ".").split("."):
            target = getattr(target, name, None)
        if target is None:
            changed.append(f"{path} is gone")
        elif list(inspect.signature(target).parameters) != parameters:
            changed.append(f"{path} takes {list(inspect.signature(target).parameters)}")
    return changed


def apply() -> None:
    """Install both fixes (once), if the Keras internals they replace are as expected."""
    if getattr(tf_trainer, _PATCHED, False):
        return
    changed = changed_internals()
    if changed:
        warnings.warn(
            f"Keras {keras.__version__} changed the internals zoo patches for multi-worker "
            f"training ({'; '.join(changed)}); training on a cluster uses Keras as it is",
            TrainingWarning,
            stacklevel=2,
        )
        return
    reduce_per_replica = tf_trainer.reduce_per_replica
    symbolic_build = tf_trainer.TensorFlowTrainer._maybe_symbolic_build

    def reduce_logs(values: Any, strategy: Any, reduction: str = "auto") -> Any:
        if reduction in ("auto", "mean") and _multi_worker(strategy):
            return keras.tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return reduce_per_replica(values, strategy, reduction=reduction)

    def build_from_local_batch(self: Any, iterator: Any = None, data_batch: Any = None) -> None:
        strategy = self.distribute_strategy
        if iterator is None or not _multi_worker(strategy):
            return symbolic_build(self, iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:
            batch = next(batches)
            local = keras.tree.map_structure(
                lambda v: (
                    strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues)
                    else v
                ),
                batch,
            )
            with strategy.scope():
                self._symbolic_build(data_batch=local)
            return None
        return None

    tf_trainer.reduce_per_replica = reduce_logs
    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = build_from_local_batch
    setattr(tf_trainer, _PATCHED, True)


def _multi_worker(strategy: Any) -> bool:
    return (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    )
