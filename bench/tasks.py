"""Regression, vote fractions and multi-label, as a newcomer runs them: bare settings.

Trains ``zoo finetune astro_cnn CATALOG --task T`` (no other setting, so the shipped
weights and the default recipe) on zoo's synthetic catalog, 150 galaxies per default
class, and scores each run on a fresh catalog drawn on another seed (``zoo evaluate``).
The goals of issue 21:

- regression of axis ratio and bulge fraction: R² at least 0.9 on the fresh catalog;
- votes: the predicted vote fractions closer to the galaxies' true answer probabilities
  (the catalog's ``p_<question>``, from which the volunteers' votes were drawn) than the
  volunteers' own fractions are: the mean absolute error below their sampling noise.

Run: python bench/tasks.py
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def vote_errors(run: object, catalog: Path) -> list[tuple[str, int, float, float]]:
    """Per question: galaxies asked, the volunteers' and the model's MAE from the truth."""
    from zoo.data.dataset import load_image_set, target_array
    from zoo.data.synth_catalog import TRUE_PREFIX
    from zoo.train.evaluate import predict

    task = run.task
    images = load_image_set(catalog, task="votes", targets=run.labels, all_in="test")
    fractions = task.fractions(predict(run.model, images.samples, run.geometry))
    counts = target_array(images.samples)
    rows = {r["path"]: r for r in csv.DictReader(open(catalog))}
    truth = {q: np.array([float(rows[s.relpath][TRUE_PREFIX + q]) for s in images.samples])
             for q, _ in task.questions}  # fmt: skip
    result = []
    for (question, _), (start, end) in zip(task.questions, task.ranges(), strict=True):
        asked = counts[:, start:end].sum(axis=1)
        mask = asked > 0
        volunteers = counts[mask, start] / asked[mask]
        model = fractions[mask, start]
        p = truth[question][mask]
        result.append(
            (
                question,
                int(mask.sum()),
                float(np.abs(volunteers - p).mean()),
                float(np.abs(model - p).mean()),
            )
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-class", type=int, default=150)
    parser.add_argument("--tasks", nargs="+", default=["regress", "votes", "multilabel"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zoo-bench-tasks-"))
    os.environ["ZOO_HOME"] = str(work / "home")
    import zoo
    from zoo.data.synth import write_synthetic_dataset
    from zoo.train.evaluate import evaluate_run

    train = write_synthetic_dataset(work / "train", per_class=args.per_class, seed=0, catalog=True)
    fresh = write_synthetic_dataset(
        work / "fresh", per_class=args.per_class, seed=500, catalog=True
    )
    targets = {"regress": ("axis_ratio", "bulge_fraction")}
    for task in args.tasks:
        started = time.perf_counter()
        run = zoo.finetune(
            "astro_cnn", train.catalog, work / task, task=task, targets=targets.get(task, ()),
            progress=False,
        )  # fmt: skip
        minutes = (time.perf_counter() - started) / 60
        metrics, _ = evaluate_run(run.path, fresh.catalog, name="fresh")
        print(f"\n## --task {task} ({minutes:.1f} min, plan: {run.config['plan']['strategy']})")
        print("\n".join(metrics.lines()))
        if task == "votes":
            print("\n| question | galaxies asked | volunteers' MAE from the truth | model's MAE |")
            print("|---|---|---|---|")
            for question, asked, volunteers, model in vote_errors(run, fresh.catalog):
                print(f"| {question} | {asked} | {volunteers:.4f} | {model:.4f} |")


if __name__ == "__main__":
    main()
