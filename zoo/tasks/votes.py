"""Galaxy Zoo vote fractions: volunteers' answers to a decision tree of questions.

The head predicts Dirichlet concentrations for each question's answers and is trained on
the vote counts themselves (Walmsley et al. 2022, MNRAS 509, 3966), so a galaxy seen by
five volunteers counts for less than one seen by fifty, and a question that was never
asked of a galaxy counts for nothing. The predicted vote fractions are the
concentrations' means, question by question.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from zoo.data.targets import TargetColumns
from zoo.tasks.task import Task, TaskMetrics

#: Concentrations lie in [1, 1 + SPREAD] (Zoobot's range): never below 1, so the
#: Dirichlet is never U-shaped, and high enough for a confident answer.
SPREAD = 99.0


class Votes(Task):
    """Vote counts per answer column (``QUESTION_ANSWER``), grouped into questions."""

    name = "votes"

    def __init__(self, outputs: Sequence[str]) -> None:
        super().__init__(outputs)
        self.questions = TargetColumns("votes", self.outputs).questions()

    def ranges(self) -> list[tuple[int, int]]:
        """Each question's (first, end) output columns."""
        ranges, start = [], 0
        for _, answers in self.questions:
            ranges.append((start, start + len(answers)))
            start += len(answers)
        return ranges

    def output_layer(self, x: Any) -> Any:
        unit = keras.layers.Dense(
            len(self.outputs), activation="sigmoid", dtype="float32", name="concentration_logits"
        )(x)
        return keras.layers.Rescaling(SPREAD, offset=1.0, dtype="float32", name="concentrations")(
            unit
        )

    def loss(self, label_smoothing: float) -> Any:
        from zoo.tasks.losses import DirichletMultinomial

        return DirichletMultinomial(self.ranges())

    def fractions(self, concentrations: np.ndarray) -> np.ndarray:
        """Each question's expected vote fractions: its concentrations over their sum."""
        result = np.array(concentrations, dtype=float)
        for start, end in self.ranges():
            result[:, start:end] /= result[:, start:end].sum(axis=1, keepdims=True)
        return result

    def score(
        self, truth: np.ndarray, predicted: np.ndarray, validation: dict[str, Any] | None = None
    ) -> TaskMetrics:
        from zoo.tasks.metrics import vote_metrics

        return vote_metrics(truth, self.fractions(predicted), self.questions)

    def serving_outputs(self, predicted: Any, settings: dict[str, Any]) -> dict[str, Any]:
        import tensorflow as tf

        alpha = tf.cast(predicted, tf.float32)
        per_question = {
            question: alpha[:, start:end] / tf.reduce_sum(alpha[:, start:end], 1, keepdims=True)
            for (question, _), (start, end) in zip(self.questions, self.ranges(), strict=True)
        }
        return {
            "concentrations": alpha,
            "fractions": tf.concat(list(per_question.values()), axis=1),
            **per_question,
        }

    def regression_output(self, predicted: Any) -> Any:
        """The first question's first answer (Galaxy Zoo's 'smooth' fraction, say)."""
        first = self.serving_outputs(predicted, {})
        return first["fractions"][:, 0]
