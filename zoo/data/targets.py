"""Numeric targets read from a catalog's columns: values to regress, label flags, vote counts.

A task other than classification reads its targets from a CSV catalog (``path`` and the
columns; ``label`` and ``split`` as for classification, ``label`` optional):

- ``regress``: one or more numeric columns, named with ``--targets``;
- ``multilabel``: 0/1 columns, one per label (default: every column that holds only 0
  and 1, both);
- ``votes``: vote counts named ``QUESTION_ANSWER``, as Galaxy Zoo publishes them
  (``smooth-or-featured_smooth``); the columns sharing a question are its answers
  (default: every group of two or more columns of whole numbers).

Every value is checked before anything trains. What the catalog got wrong (a column that
is not there, text where a number belongs, a negative or fractional count) stops the run
with the file, line and column; a row whose target is simply missing (empty, NaN) is
skipped, counted and listed like an unreadable image. A vote question without votes in a
row is masked for that row: it was not asked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from zoo.errors import DataError

Task = Literal["classify", "regress", "multilabel", "votes"]
TASKS: tuple[str, ...] = get_args(Task)
#: Columns a catalog uses for something else than targets.
RESERVED = ("path", "label", "split")
_MISSING = {"", "nan", "na", "n/a", "null", "none"}


@dataclass(frozen=True)
class TargetColumns:
    """The catalog columns a task predicts, in output order; for votes, grouped by question."""

    task: str
    columns: tuple[str, ...]

    def questions(self) -> list[tuple[str, tuple[str, ...]]]:
        """Vote columns grouped by question (the name before the last '_'), in order."""
        groups: dict[str, list[str]] = {}
        for column in self.columns:
            groups.setdefault(question_of(column), []).append(column)
        return [(question, tuple(columns)) for question, columns in groups.items()]


def question_of(column: str) -> str:
    return column.rsplit("_", 1)[0]


def choose_columns(
    path: Path,
    header: Sequence[str],
    rows: Sequence[dict[str, str]],
    task: str,
    asked: Sequence[str],
) -> TargetColumns:
    """The target columns: those asked for (each must exist), or the task's default."""
    if task not in TASKS or task == "classify":
        raise DataError(f"--task must be one of {', '.join(TASKS[1:])} to read target columns")
    candidates = [c for c in header if c not in RESERVED]
    if asked:
        missing = [c for c in asked if c not in header]
        if missing:
            raise DataError(
                f"{path}: no column {', '.join(repr(c) for c in missing)} (the catalog has "
                f"{', '.join(candidates) or 'no target columns'})"
            )
        columns = tuple(dict.fromkeys(asked))
    elif task == "regress":
        numeric = [c for c in candidates if _all_numbers(rows, c)]
        raise DataError(
            f"{path}: --task regress needs --targets COLUMN[,COLUMN...]; numeric columns: "
            f"{', '.join(numeric) or 'none'}"
        )
    elif task == "multilabel":
        columns = tuple(c for c in candidates if _flags(rows, c))
        if not columns:
            raise DataError(
                f"{path}: --task multilabel needs 0/1 columns, one per label, and none holds "
                "only 0 and 1; name them with --targets"
            )
    else:
        whole = [c for c in candidates if "_" in c and _all_whole(rows, c)]
        counts = {question_of(c) for c in whole}
        columns = tuple(
            c for c in whole if sum(question_of(o) == question_of(c) for o in whole) > 1
        )
        if not columns:
            raise DataError(
                f"{path}: --task votes needs vote-count columns named QUESTION_ANSWER, two or "
                f"more per question, and none were found ({len(counts)} candidate questions); "
                "name them with --targets"
            )
    chosen = TargetColumns(task, columns)
    if task == "votes":
        alone = [q for q, answers in chosen.questions() if len(answers) < 2]
        if alone:
            raise DataError(
                f"{path}: question(s) {', '.join(alone)} have one answer column; a vote "
                "question needs two or more QUESTION_ANSWER columns"
            )
    return chosen


def row_targets(
    path: Path, line: int, row: dict[str, str], targets: TargetColumns
) -> tuple[float, ...] | str:
    """One row's target values, or why the row has none (it is skipped).

    A value the catalog got wrong raises DataError naming the file, line and column.
    """
    values = [_number(path, line, column, row.get(column, "")) for column in targets.columns]
    if targets.task == "votes":
        return _votes(path, line, targets, values)
    missing = [c for c, v in zip(targets.columns, values, strict=True) if v is None]
    if missing:
        return f"line {line}: no value in column {', '.join(repr(c) for c in missing)}"
    if targets.task == "multilabel":
        for column, value in zip(targets.columns, values, strict=True):
            if value not in (0.0, 1.0):
                raise DataError(
                    f"{path}, line {line}, column '{column}': {value:g} is not 0 or 1 (a "
                    "multi-label column says whether the label applies)"
                )
    return tuple(float(v) for v in values)  # type: ignore[arg-type]


def _votes(
    path: Path, line: int, targets: TargetColumns, values: list[float | None]
) -> tuple[float, ...] | str:
    by_column = dict(zip(targets.columns, values, strict=True))
    for column, value in by_column.items():
        if value is not None and value < 0:
            raise DataError(
                f"{path}, line {line}, column '{column}': vote count {value:g} is negative"
            )
        if value is not None and value != int(value):
            raise DataError(
                f"{path}, line {line}, column '{column}': vote count {value:g} is not a whole number"
            )
    for _, answers in targets.questions():  # a question with a missing count was not asked
        if any(by_column[a] is None for a in answers):
            by_column.update({a: 0.0 for a in answers})
    if not any(by_column.values()):
        return f"line {line}: no votes in any question"
    return tuple(float(by_column[c]) for c in targets.columns)  # type: ignore[arg-type]


def _number(path: Path, line: int, column: str, text: str) -> float | None:
    """A cell as a number; None where it is empty or NaN."""
    if text.strip().lower() in _MISSING:
        return None
    try:
        value = float(text)
    except ValueError:
        raise DataError(
            f"{path}, line {line}, column '{column}': {text!r} is not a number"
        ) from None
    if math.isnan(value):
        return None
    if not math.isfinite(value):
        raise DataError(f"{path}, line {line}, column '{column}': {text!r} is not a finite number")
    return value


def _values(rows: Sequence[dict[str, str]], column: str) -> list[float] | None:
    """A column's numbers (missing cells left out), or None if any cell is not a number."""
    found = []
    for row in rows:
        text = row.get(column, "").strip().lower()
        if text in _MISSING:
            continue
        try:
            found.append(float(text))
        except ValueError:
            return None
    return found


def _all_numbers(rows: Sequence[dict[str, str]], column: str) -> bool:
    return bool(_values(rows, column))


def _flags(rows: Sequence[dict[str, str]], column: str) -> bool:
    """A column of 0 and 1 that holds both (a label that never applies teaches nothing)."""
    return set(_values(rows, column) or ()) == {0.0, 1.0}


def _all_whole(rows: Sequence[dict[str, str]], column: str) -> bool:
    values = _values(rows, column)
    return bool(values) and all(v == int(v) for v in values if math.isfinite(v))
