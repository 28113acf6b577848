"""Evaluation metrics for a classifier's predicted probabilities, in plain numpy.

Kept free of TensorFlow so reports can be recomputed from saved predictions, and defined
so that no value is ever NaN: a class that is never predicted, or never occurs, scores 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.errors import MetricsError

DEFAULT_BINS = 15
_TOLERANCE = 1e-6  # float32 softmax rounding may land a hair outside [0, 1]


@dataclass(frozen=True)
class ClassificationMetrics:
    """Headline numbers, per-class scores and the confusion matrix of one evaluation."""

    labels: tuple[str, ...]
    count: int
    accuracy: float
    per_class: dict[str, dict[str, float]]
    macro_f1: float
    confusion: list[list[int]]
    expected_calibration_error: float
    top_confidence_mean: float

    def to_dict(self) -> dict:
        """Plain Python types only, so ``json.dumps`` takes it as it is."""
        return {
            "labels": list(self.labels),
            "count": self.count,
            "accuracy": self.accuracy,
            "per_class": {label: dict(scores) for label, scores in self.per_class.items()},
            "macro_f1": self.macro_f1,
            "confusion": [list(row) for row in self.confusion],
            "expected_calibration_error": self.expected_calibration_error,
            "top_confidence_mean": self.top_confidence_mean,
        }

    def headline(self) -> dict[str, float]:
        """The numbers the run's summary shows."""
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "expected_calibration_error": self.expected_calibration_error,
        }

    def plot(self, folder: Path, split: str) -> None:
        from zoo.tasks.task import plot_name
        from zoo.train.plots import plot_confusion_matrix

        plot_confusion_matrix(self.confusion, self.labels, folder / plot_name("confusion", split))

    def lines(self) -> list[str]:
        """A text report for a terminal or a log: headline numbers, then one row per class."""
        correct = sum(self.confusion[i][i] for i in range(len(self.labels)))
        width = max(len("label"), *(len(label) for label in self.labels))
        lines = [
            f"accuracy: {self.accuracy:.4f} ({correct}/{self.count})",
            f"macro F1: {self.macro_f1:.4f}",
            f"expected calibration error: {self.expected_calibration_error:.4f}",
            f"mean top-class confidence: {self.top_confidence_mean:.4f}",
            "",
            f"{'label':<{width}}  precision  recall      f1  support",
        ]
        for label in self.labels:
            scores = self.per_class[label]
            lines.append(
                f"{label:<{width}}  {scores['precision']:9.4f}  {scores['recall']:6.4f}"
                f"  {scores['f1']:6.4f}  {int(scores['support']):7d}"
            )
        return lines


def classification_metrics(
    y_true: Sequence[int] | np.ndarray,
    probabilities: np.ndarray,
    labels: Sequence[str],
    bins: int = DEFAULT_BINS,
) -> ClassificationMetrics:
    """Score predictions (the arg-max of each row of ``probabilities``) against ``y_true``."""
    labels = tuple(labels)
    _check_labels(labels)
    truth, probs = _validated(y_true, probabilities, len(labels))
    predicted = probs.argmax(axis=1)
    confusion = _confusion(truth, predicted, len(labels))
    per_class = _per_class(confusion, labels)
    return ClassificationMetrics(
        labels=labels,
        count=len(truth),
        accuracy=float(np.trace(confusion)) / len(truth),
        per_class=per_class,
        macro_f1=float(np.mean([scores["f1"] for scores in per_class.values()])),
        confusion=confusion.tolist(),
        expected_calibration_error=_ece(truth, probs, bins),
        top_confidence_mean=float(probs.max(axis=1).mean()),
    )


def expected_calibration_error(
    y_true: Sequence[int] | np.ndarray,
    probabilities: np.ndarray,
    bins: int = DEFAULT_BINS,
) -> float:
    """How far top-class confidence strays from accuracy (Guo et al. 2017), from 0 to 1.

    Confidences fall into ``bins`` equal-width bins over [0, 1], each bin ``(lower, upper]``
    (the first also takes 0); the result is the bin-size-weighted mean of
    |accuracy - mean confidence| over the bins.
    """
    probs = np.asarray(probabilities)
    if probs.ndim != 2:
        raise MetricsError(
            f"probabilities must be 2-D (samples x classes), got shape {probs.shape}"
        )
    truth, probs = _validated(y_true, probs, probs.shape[1])
    return _ece(truth, probs, bins)


def _ece(truth: np.ndarray, probs: np.ndarray, bins: int) -> float:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise MetricsError(f"bins must be a positive integer, got {bins!r}")
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == truth
    inner_edges = np.linspace(0.0, 1.0, int(bins) + 1)[1:-1]
    which = np.searchsorted(inner_edges, confidence, side="left")
    total = 0.0
    for b in range(int(bins)):
        members = which == b
        size = int(members.sum())
        if size:
            gap = abs(correct[members].mean() - confidence[members].mean())
            total += size / len(truth) * gap
    return float(total)


def _confusion(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted ones."""
    flat = np.bincount(truth * classes + predicted, minlength=classes * classes)
    return flat.reshape(classes, classes)


def _per_class(confusion: np.ndarray, labels: tuple[str, ...]) -> dict[str, dict[str, float]]:
    hits = np.diag(confusion)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    scores = {}
    for i, label in enumerate(labels):
        precision = _ratio(hits[i], predicted[i])
        recall = _ratio(hits[i], support[i])
        scores[label] = {
            "precision": precision,
            "recall": recall,
            "f1": _ratio(2 * precision * recall, precision + recall),
            "support": int(support[i]),
        }
    return scores


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, or 0.0 where the denominator is 0 (the metric is undefined)."""
    return float(numerator) / float(denominator) if denominator else 0.0


def _check_labels(labels: tuple[str, ...]) -> None:
    if not labels:
        raise MetricsError("labels is empty: give one name per class")
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise MetricsError(f"labels must be unique; repeated: {', '.join(duplicates)}")


def _validated(
    y_true: Sequence[int] | np.ndarray, probabilities: np.ndarray, classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """y_true as int64 class indices and probabilities as float64, or a MetricsError saying why."""
    truth = np.asarray(y_true)
    probs = np.asarray(probabilities)
    if truth.ndim != 1:
        raise MetricsError(
            f"y_true must be 1-D (one class index per sample), got shape {truth.shape}"
        )
    if truth.size == 0:
        raise MetricsError("y_true is empty: there is nothing to evaluate")
    if not np.issubdtype(truth.dtype, np.integer):
        raise MetricsError(f"y_true must hold integer class indices, got dtype {truth.dtype}")
    if probs.ndim != 2 or probs.shape[1] != classes:
        raise MetricsError(
            f"probabilities must have shape (samples, {classes}) with one column per label, "
            f"got {probs.shape}"
        )
    if probs.shape[0] != truth.shape[0]:
        raise MetricsError(
            f"y_true has {truth.shape[0]} samples but probabilities has {probs.shape[0]} rows"
        )
    if not np.issubdtype(probs.dtype, np.number) or np.issubdtype(probs.dtype, np.complexfloating):
        raise MetricsError(f"probabilities must be real numbers, got dtype {probs.dtype}")
    probs = probs.astype(np.float64)
    if not np.isfinite(probs).all() or probs.min() < -_TOLERANCE or probs.max() > 1 + _TOLERANCE:
        raise MetricsError(
            "probabilities must be finite and within [0, 1]; pass softmax outputs, not logits"
        )
    out_of_range = truth[(truth < 0) | (truth >= classes)]
    if out_of_range.size:
        raise MetricsError(
            f"y_true holds class index {int(out_of_range[0])}, outside 0..{classes - 1} "
            f"for {classes} labels"
        )
    return truth.astype(np.int64), np.clip(probs, 0.0, 1.0)
