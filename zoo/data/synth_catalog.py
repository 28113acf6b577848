"""A catalog for the synthetic galaxies: their true parameters and simulated volunteer votes.

Galaxy Zoo asks volunteers a decision tree of questions and publishes, per galaxy, how
many chose each answer; a question is asked only of those who gave the answer before it.
Here a small tree of that kind (below), answered by simulated volunteers. Each galaxy
has a true probability per answer that follows what can be seen in its image: its
class's typical answer, moved by the parameters a volunteer sees (a rounder galaxy looks
smoother, a flatter one more edge-on, looser arms are plainer, nuclei further apart look
more like a merger), with a little scatter beyond that; a faint or small galaxy pulls
every answer towards the undecided middle, as volunteers are less sure of what they
barely see. Each volunteer then answers at random with those probabilities. Column names follow Galaxy Zoo DECaLS (``question_answer``).

The catalog is what ``zoo finetune --task`` reads: the parameters to regress, 0/1 flags
for multi-label training (bar, spiral, dusty, merger), the vote counts, and each
question's true probability of its first answer (``p_<question>``), against which the
volunteers' fractions and a model's predictions can both be judged.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Question:
    """One question of the tree, its answers, and the answer it follows (None: always asked)."""

    name: str
    answers: tuple[str, ...]
    asked_after: tuple[str, str] | None = None

    def columns(self) -> list[str]:
        return [f"{self.name}_{answer}" for answer in self.answers]


QUESTIONS: tuple[Question, ...] = (
    Question("smooth-or-featured", ("smooth", "featured")),
    Question("disk-edge-on", ("yes", "no"), ("smooth-or-featured", "featured")),
    Question("has-spiral-arms", ("yes", "no"), ("disk-edge-on", "no")),
    Question("merging", ("merger", "none")),
)
VOLUNTEERS = (30, 50)  # volunteers who classify each galaxy, drawn uniformly

#: Each class's typical probability of the first answer of each question it reaches.
_TYPICAL: dict[str, dict[str, float]] = {
    "smooth_round": {"smooth-or-featured": 0.9, "disk-edge-on": 0.2, "has-spiral-arms": 0.2, "merging": 0.05},
    "smooth_cigar": {"smooth-or-featured": 0.8, "disk-edge-on": 0.45, "has-spiral-arms": 0.15, "merging": 0.05},
    "edge_on": {"smooth-or-featured": 0.25, "disk-edge-on": 0.92, "has-spiral-arms": 0.3, "merging": 0.05},
    "barred_spiral": {"smooth-or-featured": 0.12, "disk-edge-on": 0.06, "has-spiral-arms": 0.9, "merging": 0.05},
    "tight_spiral": {"smooth-or-featured": 0.2, "disk-edge-on": 0.08, "has-spiral-arms": 0.85, "merging": 0.05},
    "loose_spiral": {"smooth-or-featured": 0.1, "disk-edge-on": 0.05, "has-spiral-arms": 0.93, "merging": 0.07},
    "merger": {"smooth-or-featured": 0.35, "disk-edge-on": 0.1, "has-spiral-arms": 0.3, "merging": 0.88},
}  # fmt: skip
#: The quantities the renderer draws that a catalog gives, beyond PARAMETERS.
OBSERVED = ("flux", "snr")
#: 0/1 flags for multi-label training (``bar`` is already a parameter), from the parameters.
FLAGS = ("spiral", "dusty", "merger")
#: Each question's true probability of its first answer, ``p_<question>``: what the
#: votes are drawn from, for judging predicted fractions against the truth.
TRUE_PREFIX = "p_"


def flags(params: dict[str, float]) -> dict[str, int]:
    return {
        "spiral": int(params["arms"] > 0),
        "dusty": int(params["dust"] > 0),
        "merger": int(params["separation"] > 0),
    }


def vote_columns() -> list[str]:
    return [column for question in QUESTIONS for column in question.columns()]


#: Scatter (in logit) of a galaxy's true answer beyond what its image shows.
UNSEEN_SCATTER = 0.2


def answer_probabilities(
    kind: str, params: dict[str, float], rng: np.random.Generator
) -> dict[str, float]:
    """This galaxy's true probability of each question's first answer.

    The class's typical answer, moved in logit by what the image shows (``_seen``) and
    by a little unseen scatter; at low signal-to-noise or small size the answers are
    pulled towards 0.5 (Walmsley et al. 2020 measured this loss of confidence with
    redshift).
    """
    snr, size = params["snr"], params["size"]
    clarity = 1 / (1 + math.exp(-(math.log10(max(snr, 1e-3)) - 1.2) * 4))  # ~0 at S/N 5, ~1 at 50
    clarity *= min(1.0, size / 0.08)
    result = {}
    for question, typical in _TYPICAL[kind].items():
        logit = (
            math.log(typical / (1 - typical))
            + _seen(question, params)
            + rng.normal(0, UNSEEN_SCATTER)
        )
        result[question] = 0.5 + (1 / (1 + math.exp(-logit)) - 0.5) * (0.4 + 0.6 * clarity)
    return result


def _seen(question: str, params: dict[str, float]) -> float:
    """How a galaxy's visible parameters move its answer, in logit, from its class's."""
    if question == "smooth-or-featured":  # a round outline reads as smooth
        return 2.5 * (params["axis_ratio"] - 0.75)
    if question == "disk-edge-on":  # a flat one as edge-on
        return -3.0 * (params["axis_ratio"] - 0.4)
    if question == "has-spiral-arms":  # open arms are easier to see than tight ones
        return 0.05 * (params["pitch"] - 25) if params["arms"] else 0.0
    if question == "merging":  # two nuclei apart are plainly two
        return params["separation"] - 1.5 if params["separation"] else 0.0
    return 0.0


def simulate_votes(probabilities: dict[str, float], rng: np.random.Generator) -> dict[str, int]:
    """Counts per answer column from volunteers walking the tree."""
    counts: dict[str, int] = {}
    asked = {None: int(rng.integers(VOLUNTEERS[0], VOLUNTEERS[1] + 1))}
    for question in QUESTIONS:
        reached = (
            asked[None] if question.asked_after is None else counts["_".join(question.asked_after)]
        )
        first = int(rng.binomial(reached, probabilities[question.name]))
        for answer, count in zip(question.answers, (first, reached - first), strict=True):
            counts[f"{question.name}_{answer}"] = count
    return counts


def catalog_text(rows: Sequence[dict[str, object]], parameters: Sequence[str]) -> str:
    """The CSV: path and label, the drawn parameters, flux and S/N, the 0/1 flags, the
    vote counts, then each question's true probability of its first answer."""
    truths = [TRUE_PREFIX + q.name for q in QUESTIONS]
    header = ["path", "label", *parameters, *OBSERVED, *FLAGS, *vote_columns(), *truths]
    text = io.StringIO()
    writer = csv.DictWriter(text, header, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: round(v, 5) if isinstance(v, float) else v for k, v in row.items()})
    return text.getvalue()
