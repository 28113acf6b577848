"""Predictions and metrics for a trained model: on a run's splits or on new data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoo.data.dataset import Sample
from zoo.data.images import ImageGeometry
from zoo.fs import write_json, write_text
from zoo.tasks import TaskMetrics


def predict(
    model: Any, samples: Sequence[Sample], geometry: ImageGeometry, batch_size: int = 32
) -> np.ndarray:
    """The model's outputs for each sample, in order (class probabilities, values, ...)."""
    from zoo.data.pipeline import image_dataset

    images = image_dataset(samples, geometry, batch_size=batch_size, labels=False)
    return np.asarray(model.predict(images, verbose=0))


def evaluate_run(
    run: str | Path,
    data: str | Path,
    *,
    name: str | None = None,
    batch_size: int = 32,
    progress: bool = False,
) -> tuple[TaskMetrics, Path]:
    """Score the run's model on every image of ``data``; write the metrics beside the run.

    Results go to ``RUN/evaluations/<name>/`` (``name`` defaults to the data folder's name).
    A task other than classification reads the run's target columns from the catalog
    ``data``; a multi-label run scores at the thresholds its validation chose.
    """
    from zoo.data.dataset import load_image_set, target_array
    from zoo.train.rundir import RunDir, load_run

    with RunDir(run, new=False) as run_dir:
        folder = run_dir.evaluation_folder(name or Path(data).expanduser().resolve().name)
        finished = load_run(run_dir.path)
        geometry, task = finished.geometry, finished.task
        images = load_image_set(
            data,
            labels=finished.labels,
            bands=geometry.bands,
            channels=geometry.channels,
            all_in="test",
            progress=progress,
            task=task.name,
            targets=finished.labels if task.name != "classify" else (),
        )
        predicted = predict(finished.model, images.samples, geometry, batch_size)
        metrics = task.score(target_array(images.samples), predicted, finished.metrics.get("val"))
        write_json(folder / "metrics.json", metrics.to_dict() | {"data": images.summary()})
        write_text(folder / "metrics.txt", "\n".join(metrics.lines()) + "\n")
        metrics.plot(folder, "")
    return metrics, folder
