"""Where training runs: one device, several GPUs, or several workers; and in what precision.

``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` describes a cluster, ``MirroredStrategy``
when more than one GPU is visible, else the default (one device). Mixed precision
(float16 compute, float32 weights) is on by default on a GPU and off on the CPU, where it
is slower.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import keras
import tensorflow as tf

from zoo.train import keras_compat
from zoo.train.cluster import Cluster, rendezvous


def choose_strategy(cluster: Cluster | None = None, timeout: float = 300.0) -> tuple[Any, str]:
    """The tf.distribute strategy for this machine, and its name for the run record.

    With a cluster, every member must answer within ``timeout`` seconds first
    (``zoo.train.cluster.rendezvous``); this must run before any other TensorFlow work.
    """
    if cluster is not None:
        rendezvous(cluster, timeout)
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        if cluster.size > 1:
            keras_compat.apply()
        return strategy, f"MultiWorkerMirroredStrategy ({cluster.size} workers)"
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy(), f"MirroredStrategy ({len(gpus)} GPUs)"
    device = "GPU" if gpus else "CPU"
    return tf.distribute.get_strategy(), f"default ({device})"


@contextmanager
def precision(mixed: bool | None) -> Iterator[str]:
    """Keras's dtype policy for one run, restored after it; yields the policy's name.

    None means mixed precision exactly when a GPU is visible. Keras's policy is global,
    so it is scoped here: a later export or run in the same process starts in float32.
    """
    if mixed is None:
        mixed = bool(tf.config.list_logical_devices("GPU"))
    policy = "mixed_float16" if mixed else "float32"
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield policy
    finally:
        keras.mixed_precision.set_global_policy(previous)


@contextmanager
def deterministic_ops() -> Iterator[None]:
    """TensorFlow's op determinism for one run, so that a seed gives the same run.

    The switch is global and makes unseeded random ops fail, so it is turned off again
    afterwards for the rest of the process (through TensorFlow's own, non-public,
    counterpart of the switch; if that is missing, it stays on).
    """
    from tensorflow.python.framework import config as tf_config

    was_on = tf_config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if not was_on and hasattr(tf_config, "disable_op_determinism"):
            tf_config.disable_op_determinism()
