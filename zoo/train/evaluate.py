"""Predictions and metrics for a trained classifier: on a run's splits or on new data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoo.data.dataset import Sample
from zoo.data.images import Band
from zoo.train import rundir
from zoo.train.metrics import ClassificationMetrics


def predict(
    model: Any,
    samples: Sequence[Sample],
    size: tuple[int, ...],
    channels: int,
    bands: Sequence[Band] | None,
    batch_size: int = 32,
) -> np.ndarray:
    """Class probabilities for each sample, in order."""
    from zoo.data.pipeline import image_dataset

    images = image_dataset(
        samples,
        size=tuple(size),
        channels=channels,
        bands=bands,
        batch_size=batch_size,
        labels=False,
    )
    return np.asarray(model.predict(images, verbose=0))


def register_custom_layers(build: str) -> None:
    """Import the modules whose Keras layers a saved classifier may contain.

    zoo's own (preprocessing, astro_cnn's views, TF1 graphs) and the module of the
    backbone's builder, where a plugin defines its layers.
    """
    import importlib

    modules = ("zoo.preprocessing", "zoo.plugins.astro_layers", "zoo.sources.meta_graph")
    for module in (*modules, build.partition(":")[0]):
        try:
            importlib.import_module(module)
        except ImportError:
            continue  # loading the model then names the layer it cannot find


def evaluate_run(
    run: str | Path, data: str | Path, *, name: str | None = None, batch_size: int = 32
) -> tuple[ClassificationMetrics, Path]:
    """Score the run's model on every image of ``data``; write the metrics beside the run.

    Results go to ``RUN/evaluations/<name>/`` (``name`` defaults to the data folder's name).
    """
    import keras

    from zoo.data.dataset import load_image_set
    from zoo.train.metrics import classification_metrics
    from zoo.train.plots import plot_confusion_matrix

    run = Path(run).expanduser()
    if not (run / rundir.CONFIG).exists() or not (run / "model.keras").exists():
        raise rundir.RunDirError(
            f"{run} is not a finished run (no {rundir.CONFIG} and model.keras)"
        )
    config = rundir.read_json(run / rundir.CONFIG)
    register_custom_layers(config["backbone"]["build"])
    labels = config["labels"]
    bands = config["settings"]["bands"]
    *size, channels = config["input_shape"]
    images = load_image_set(data, labels=labels, bands=bands, all_in="test")
    model = keras.saving.load_model(run / "model.keras", compile=False)
    probabilities = predict(model, images.samples, tuple(size), channels, bands, batch_size)
    metrics = classification_metrics([s.label for s in images.samples], probabilities, labels)
    folder = run / "evaluations" / (name or Path(data).expanduser().resolve().name)
    folder.mkdir(parents=True, exist_ok=True)
    rundir.write_json(folder / "metrics.json", metrics.to_dict() | {"data": images.summary()})
    rundir.write_text(folder / "metrics.txt", "\n".join(metrics.lines()) + "\n")
    plot_confusion_matrix(metrics.confusion, metrics.labels, folder / "confusion.png")
    return metrics, folder
