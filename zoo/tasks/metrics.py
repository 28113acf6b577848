"""Evaluation of regression, multi-label and vote predictions, in plain numpy.

Like ``zoo.train.metrics`` (the classifier's), free of TensorFlow and never NaN: a score
that is undefined on the data (R² of a constant target, AUROC of a label that never
occurs) is reported as None and shown as "n/a".
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.tasks.task import plot_name

#: Targets whose errors are judged as photometric redshifts are: in units of (1 + z).
REDSHIFT_NAMES = re.compile(r"(^|_)(z|redshift|photo_?z|z_?phot|z_?spec|zspec|zphot)($|_)", re.I)
#: A photometric redshift is an outlier when |Δz| / (1 + z) exceeds this (Hildebrandt et al. 2010).
OUTLIER_LIMIT = 0.15


def _show(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


# --- regression ---------------------------------------------------------------------


@dataclass(frozen=True)
class RegressionMetrics:
    """Per target: RMSE, MAE, R², bias; for redshift-like targets NMAD and outlier fraction."""

    targets: tuple[str, ...]
    count: int
    per_target: dict[str, dict[str, float | None]]
    truth: np.ndarray
    predicted: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"task": "regress", "count": self.count, "per_target": self.per_target}

    def headline(self) -> dict[str, Any]:
        return {key: {t: self.per_target[t][key] for t in self.targets} for key in ("r2", "rmse")}

    def lines(self) -> list[str]:
        width = max(len("target"), *(len(t) for t in self.targets))
        lines = [
            f"images: {self.count}",
            "",
            f"{'target':<{width}}      rmse       mae        r2      bias",
        ]
        for target in self.targets:
            s = self.per_target[target]
            lines.append(
                f"{target:<{width}}  {_show(s['rmse']):>8}  {_show(s['mae']):>8}  "
                f"{_show(s['r2']):>8}  {_show(s['bias']):>8}"
            )
            if "nmad" in s:
                lines.append(
                    f"{'':<{width}}  NMAD {_show(s['nmad'])}, outliers (|dz|/(1+z) > "
                    f"{OUTLIER_LIMIT}) {_show(s['outlier_fraction'])}"
                )
        return lines

    def plot(self, folder: Path, split: str) -> None:
        from zoo.train.plots import plot_predicted_against_true

        panels = [
            (f"{t} (R² {_show(self.per_target[t]['r2'])})", self.truth[:, i], self.predicted[:, i])
            for i, t in enumerate(self.targets)
        ]
        plot_predicted_against_true(panels, folder / plot_name("predicted", split))


def regression_metrics(
    truth: np.ndarray, predicted: np.ndarray, targets: Sequence[str]
) -> RegressionMetrics:
    truth, predicted = np.asarray(truth, float), np.asarray(predicted, float)
    per_target = {}
    for i, target in enumerate(targets):
        t, p = truth[:, i], predicted[:, i]
        error = p - t
        spread = float(((t - t.mean()) ** 2).sum())
        scores: dict[str, float | None] = {
            "rmse": float(np.sqrt((error**2).mean())),
            "mae": float(np.abs(error).mean()),
            "r2": 1 - float((error**2).sum()) / spread if spread > 0 else None,
            "bias": float(error.mean()),
        }
        if REDSHIFT_NAMES.search(target):
            scaled = error / (1 + t)
            scores["nmad"] = float(1.4826 * np.median(np.abs(scaled - np.median(scaled))))
            scores["outlier_fraction"] = float((np.abs(scaled) > OUTLIER_LIMIT).mean())
        per_target[target] = scores
    return RegressionMetrics(tuple(targets), len(truth), per_target, truth, predicted)


# --- multi-label ----------------------------------------------------------------------


@dataclass(frozen=True)
class MultilabelMetrics:
    """Per label: precision, recall and F1 at its threshold, AUROC; the thresholds were
    chosen on the validation split (for F1) and are the ones the export uses. F1 is
    undefined (None) for a label that neither occurs nor is predicted, and left out of
    the macro average."""

    labels: tuple[str, ...]
    count: int
    thresholds: dict[str, float]
    per_label: dict[str, dict[str, float | None]]
    macro_f1: float
    exact_match: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": "multilabel",
            "count": self.count,
            "thresholds": self.thresholds,
            "per_label": self.per_label,
            "macro_f1": self.macro_f1,
            "exact_match": self.exact_match,
        }

    def headline(self) -> dict[str, Any]:
        return {"macro_f1": self.macro_f1, "exact_match": self.exact_match}

    def lines(self) -> list[str]:
        width = max(len("label"), *(len(label) for label in self.labels))
        lines = [
            f"images: {self.count}",
            f"macro F1: {self.macro_f1:.4f}",
            f"exact match (every label right): {self.exact_match:.4f}",
            "",
            f"{'label':<{width}}  threshold  precision  recall      f1     auroc  support",
        ]
        for label in self.labels:
            s = self.per_label[label]
            lines.append(
                f"{label:<{width}}  {self.thresholds[label]:9.3f}  {_show(s['precision']):>9}  "
                f"{_show(s['recall']):>6}  {_show(s['f1']):>6}  {_show(s['auroc']):>8}  "
                f"{int(s['support'] or 0):7d}"
            )
        return lines

    def plot(self, folder: Path, split: str) -> None:
        """No plot beyond the learning curves: the table says it all."""


def multilabel_metrics(
    truth: np.ndarray,
    probabilities: np.ndarray,
    labels: Sequence[str],
    thresholds: dict[str, float] | None = None,
) -> MultilabelMetrics:
    """Scores at ``thresholds`` (given: another split's), or at the thresholds that
    maximise each label's F1 here (the validation split chooses them)."""
    truth, probabilities = np.asarray(truth) > 0.5, np.asarray(probabilities, float)
    chosen = thresholds or {
        label: best_threshold(truth[:, i], probabilities[:, i]) for i, label in enumerate(labels)
    }
    predicted = np.stack(
        [probabilities[:, i] >= chosen[label] for i, label in enumerate(labels)], 1
    )
    per_label = {}
    for i, label in enumerate(labels):
        hits = float((predicted[:, i] & truth[:, i]).sum())
        precision = hits / predicted[:, i].sum() if predicted[:, i].any() else 0.0
        recall = hits / truth[:, i].sum() if truth[:, i].any() else 0.0
        seen = truth[:, i].any() or predicted[:, i].any()
        per_label[label] = {
            "precision": precision,
            "recall": recall,
            "f1": (2 * precision * recall / (precision + recall) if precision + recall else 0.0)
            if seen
            else None,
            "auroc": auroc(truth[:, i], probabilities[:, i]),
            "support": int(truth[:, i].sum()),
        }
    return MultilabelMetrics(
        tuple(labels),
        len(truth),
        {label: round(float(chosen[label]), 4) for label in labels},
        per_label,
        float(np.mean([s["f1"] for s in per_label.values() if s["f1"] is not None] or [0.0])),
        float((predicted == truth).all(axis=1).mean()),
    )


def best_threshold(truth: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold with the best F1 (0.5 when the label never occurs)."""
    if not truth.any():
        return 0.5
    best, chosen = -1.0, 0.5
    for threshold in np.unique(np.round(scores, 4)):
        predicted = scores >= threshold
        hits = (predicted & truth).sum()
        f1 = 2 * hits / (predicted.sum() + truth.sum())
        if f1 > best:
            best, chosen = f1, float(threshold)
    return chosen


def auroc(truth: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (the Mann-Whitney statistic, ties counted half)."""
    positives, negatives = scores[truth], scores[~truth]
    if not positives.size or not negatives.size:
        return None
    order = np.argsort(np.concatenate([positives, negatives]), kind="mergesort")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    values = np.concatenate([positives, negatives])
    for value in np.unique(values):  # average ranks over ties
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    wins = ranks[: len(positives)].sum() - len(positives) * (len(positives) + 1) / 2
    return float(wins / (len(positives) * len(negatives)))


# --- votes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class VoteMetrics:
    """Per question, over the galaxies with votes on it: the mean absolute error of the
    predicted vote fractions against the observed ones, the error that the volunteers'
    own sampling noise alone would give a perfect model (``sampling_noise``), and how
    often the predicted majority answer is the volunteers' (ties left out)."""

    questions: tuple[tuple[str, tuple[str, ...]], ...]
    count: int
    per_question: dict[str, dict[str, float | int | None]]
    mae: float
    sampling_noise: float
    observed: dict[str, np.ndarray]
    predicted: dict[str, np.ndarray]

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": "votes",
            "count": self.count,
            "mae": self.mae,
            "sampling_noise": self.sampling_noise,
            "per_question": self.per_question,
        }

    def headline(self) -> dict[str, Any]:
        accuracies = [q["majority_accuracy"] for q in self.per_question.values()]
        known = [a for a in accuracies if a is not None]
        return {
            "vote_fraction_mae": self.mae,
            "sampling_noise": self.sampling_noise,
            "majority_accuracy": float(np.mean(known)) if known else None,
        }

    def lines(self) -> list[str]:
        width = max(len("question"), *(len(q) for q, _ in self.questions))
        lines = [
            f"images: {self.count}",
            f"vote fraction MAE: {self.mae:.4f} (volunteers' sampling noise alone: "
            f"{self.sampling_noise:.4f})",
            "",
            f"{'question':<{width}}  galaxies       mae     noise  majority accuracy",
        ]
        for question, _ in self.questions:
            s = self.per_question[question]
            lines.append(
                f"{question:<{width}}  {int(s['galaxies'] or 0):8d}  {_show(s['mae']):>8}  "
                f"{_show(s['sampling_noise']):>8}  {_show(s['majority_accuracy']):>17}"
            )
        return lines

    def plot(self, folder: Path, split: str) -> None:
        from zoo.train.plots import plot_predicted_against_true

        panels = [
            (
                f"{question}: {answers[0]}",
                self.observed[question][:, 0],
                self.predicted[question][:, 0],
            )
            for question, answers in self.questions
        ]
        plot_predicted_against_true(
            panels,
            folder / plot_name("predicted", split),
            x_label="observed fraction",
            y_label="predicted fraction",
        )


def vote_metrics(
    counts: np.ndarray, fractions: np.ndarray, questions: Sequence[tuple[str, tuple[str, ...]]]
) -> VoteMetrics:
    """Predicted ``fractions`` (each question's columns summing to 1) against vote ``counts``."""
    counts, fractions = np.asarray(counts, float), np.asarray(fractions, float)
    per_question: dict[str, dict[str, float | int | None]] = {}
    observed_all, predicted_all = {}, {}
    errors, noises = [], []
    start = 0
    for question, answers in questions:
        end = start + len(answers)
        k, p = counts[:, start:end], fractions[:, start:end]
        start = end
        n = k.sum(axis=1)
        asked = n > 0
        observed = k[asked] / n[asked, None]
        predicted = p[asked]
        error = np.abs(predicted - observed).mean(axis=1)
        noise = np.array(
            [
                _sampling_noise(int(total), row)
                for total, row in zip(n[asked], predicted, strict=True)
            ]
        )
        top = np.sort(observed, axis=1)
        clear = top[:, -1] > top[:, -2] if observed.shape[1] > 1 else np.ones(len(observed), bool)
        agree = predicted.argmax(axis=1) == observed.argmax(axis=1)
        per_question[question] = {
            "galaxies": int(asked.sum()),
            "mae": float(error.mean()) if error.size else None,
            "sampling_noise": float(noise.mean()) if noise.size else None,
            "majority_accuracy": float(agree[clear].mean()) if clear.any() else None,
        }
        observed_all[question], predicted_all[question] = observed, predicted
        errors.append(error)
        noises.append(noise)
    flat_errors, flat_noise = np.concatenate(errors), np.concatenate(noises)
    return VoteMetrics(
        tuple((q, tuple(a)) for q, a in questions),
        len(counts),
        per_question,
        float(flat_errors.mean()) if flat_errors.size else 0.0,
        float(flat_noise.mean()) if flat_noise.size else 0.0,
        observed_all,
        predicted_all,
    )


def _sampling_noise(total: int, probabilities: np.ndarray) -> float:
    """E|k/N - p| averaged over the answers, k ~ Binomial(N, p): how far ``total``
    volunteers' fractions stray from the true probabilities by chance alone."""
    k = np.arange(total + 1)
    mean = 0.0
    for p in np.clip(probabilities, 1e-9, 1 - 1e-9):
        log_pmf = (
            np.array(
                [
                    math.lgamma(total + 1) - math.lgamma(i + 1) - math.lgamma(total - i + 1)
                    for i in k
                ]
            )
            + k * math.log(p)
            + (total - k) * math.log1p(-p)
        )
        mean += float((np.exp(log_pmf) * np.abs(k / total - p)).sum())
    return mean / len(probabilities)
