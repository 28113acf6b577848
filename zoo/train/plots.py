"""PNG plots of a training run: learning curves, the confusion matrix, predicted against true.

Figures are drawn on the Agg canvas directly, never through pyplot, so plotting works
without a display and leaves matplotlib's global backend and figure registry untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from zoo.errors import MetricsError
from zoo.fs import atomic_file

PANELS = (("loss", "Loss"), ("accuracy", "Accuracy"))
ANNOTATE_MAX_CLASSES = 30
TICK_LABELS_MAX_CLASSES = 60


def plot_learning_curves(
    history: dict[str, list[float]],
    path: str | Path,
    phases: Sequence[tuple[str, int]] = (),
) -> Path:
    """Loss and accuracy per epoch (train and validation when present), one PNG.

    ``history`` uses Keras's keys ("loss", "val_loss", "accuracy", "val_accuracy"; any
    subset, others ignored). Epochs are numbered from 1 on the x axis, and each of
    ``phases`` (name, first epoch in that numbering) draws a line where that phase begins.
    """
    panels = [
        (key, title)
        for key, title in PANELS
        if _series(history, key) or _series(history, f"val_{key}")
    ]
    if not panels:
        raise MetricsError(
            "history has no loss or accuracy values to plot; expected Keras keys such as "
            f"'loss' and 'val_loss', got {sorted(history)}"
        )
    figure = Figure(figsize=(6.4 * len(panels), 4.8), layout="constrained")
    for column, (key, title) in enumerate(panels, start=1):
        axes = figure.add_subplot(1, len(panels), column)
        _draw_curves(axes, history, key, title)
        _draw_phases(axes, phases)
    return _save(figure, path)


def plot_confusion_matrix(
    confusion: Sequence[Sequence[int]],
    labels: Sequence[str],
    path: str | Path,
    normalize: bool = True,
) -> Path:
    """Confusion matrix heat map with counts annotated, rows = true labels; PNG.

    With ``normalize`` the colours show each row as a fraction of that class's samples,
    so rare classes are as readable as common ones; the annotations stay raw counts.
    """
    counts = np.asarray(confusion)
    classes = len(labels)
    if counts.shape != (classes, classes):
        raise MetricsError(
            f"confusion must be {classes} x {classes} (one row and column per label), "
            f"got shape {counts.shape}"
        )
    if classes == 0:
        raise MetricsError("labels is empty: there is no confusion matrix to plot")
    shown = _row_fractions(counts) if normalize else counts
    top = 1.0 if normalize else float(max(counts.max(), 1))
    side = min(4.0 + 0.45 * classes, 40.0)
    figure = Figure(figsize=(side + 1.5, side), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(shown, cmap="Blues", vmin=0.0, vmax=top)
    figure.colorbar(image, ax=axes, label="fraction of true label" if normalize else "count")
    axes.set_xlabel("predicted label")
    axes.set_ylabel("true label")
    axes.set_title("Confusion matrix (row-normalized)" if normalize else "Confusion matrix")
    if classes <= TICK_LABELS_MAX_CLASSES:
        axes.set_xticks(range(classes), labels=list(labels), rotation=45, ha="right")
        axes.set_yticks(range(classes), labels=list(labels))
    if classes <= ANNOTATE_MAX_CLASSES:
        _annotate(axes, counts, shown / top)
    return _save(figure, path)


def plot_predicted_against_true(
    panels: Sequence[tuple[str, np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    x_label: str = "true",
    y_label: str = "predicted",
) -> Path:
    """One scatter panel per (title, true, predicted), with the line where they are equal."""
    if not panels:
        raise MetricsError("nothing to plot: no targets")
    columns = min(len(panels), 4)
    rows = -(-len(panels) // columns)
    figure = Figure(figsize=(4.2 * columns, 4.0 * rows), layout="constrained")
    for index, (title, truth, predicted) in enumerate(panels, start=1):
        axes = figure.add_subplot(rows, columns, index)
        truth, predicted = np.asarray(truth, float), np.asarray(predicted, float)
        axes.scatter(truth, predicted, s=6, alpha=0.5, linewidths=0)
        if truth.size:
            low = float(min(truth.min(), predicted.min()))
            high = float(max(truth.max(), predicted.max()))
            axes.plot([low, high], [low, high], color="grey", linestyle=":", linewidth=1)
        axes.set_title(title, fontsize="medium")
        axes.set_xlabel(x_label)
        axes.set_ylabel(y_label)
        axes.grid(True, alpha=0.3)
    return _save(figure, path)


def _draw_curves(axes, history: dict[str, list[float]], key: str, title: str) -> None:
    for name, label, style in ((key, "train", "-"), (f"val_{key}", "validation", "--")):
        values = _series(history, name)
        if values:
            epochs = np.arange(1, len(values) + 1)
            axes.plot(epochs, values, style, marker="o", markersize=3, label=label)
    axes.set_title(title)
    axes.set_xlabel("epoch")
    axes.set_ylabel(key)
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best")


def _series(history: dict[str, list[float]], name: str) -> list[float]:
    """One metric's values, empty when absent (numpy arrays welcome, hence no truthiness)."""
    values = history.get(name)
    return [] if values is None else [float(value) for value in values]


def _draw_phases(axes, phases: Sequence[tuple[str, int]]) -> None:
    """A dotted line just before each phase's first epoch, named at the top of the panel."""
    for name, first_epoch in phases:
        x = first_epoch - 0.5
        axes.axvline(x, color="grey", linestyle=":", linewidth=1)
        axes.text(
            x,
            0.98,
            f" {name}",
            transform=axes.get_xaxis_transform(),
            va="top",
            ha="left",
            fontsize="small",
            color="dimgrey",
        )


def _row_fractions(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its total; a row with no samples stays 0 rather than NaN."""
    totals = counts.sum(axis=1, keepdims=True).astype(np.float64)
    return np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)


def _annotate(axes, counts: np.ndarray, intensity: np.ndarray) -> None:
    """Counts in each cell, white on dark cells so they stay legible."""
    for row in range(counts.shape[0]):
        for column in range(counts.shape[1]):
            axes.text(
                column,
                row,
                str(int(counts[row, column])),
                ha="center",
                va="center",
                fontsize="small",
                color="white" if intensity[row, column] > 0.5 else "black",
            )


def _save(figure: Figure, path: str | Path) -> Path:
    """Write next to the destination, then rename: a reader never sees half a PNG."""
    with atomic_file(path) as partial:
        FigureCanvasAgg(figure).print_png(partial)
    return Path(path)
