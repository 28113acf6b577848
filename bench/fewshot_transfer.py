"""Few-shot: astro_cnn's shipped weights against training from scratch, on two simulators.

20 labelled images per class, a bare ``zoo finetune astro_cnn DATA`` (shipped weights,
``--strategy auto``) against ``--weights none``; accuracy on 60 images per class rendered
with another seed. ``zoo``: zoo's own simulator, all seven classes. ``galsim``: galaxies
no zoo code rendered (bench/galsim_galaxies.py: GalSim's profiles, PSFs and noise,
survey stretches; five classes). The goal of issue 20: the shipped weights at least 15
points over scratch on both.

Run: python bench/fewshot_transfer.py zoo galsim --seeds 0 1 2
     python bench/fewshot_transfer.py galsim --weights simulated OTHER.weights.h5 none
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from finetune_defaults import held_out_accuracy


def write_sets(renderer: str, work: Path, per_class: int) -> tuple[Path, Path]:
    """A training set of ``per_class`` images per class and a held-out one of 60."""
    train, held = work / renderer / "train", work / renderer / "held"
    if renderer == "zoo":
        from zoo.data.synth import write_synthetic_dataset
        from zoo.data.synth_config import CLASSES

        write_synthetic_dataset(train, tuple(CLASSES), per_class, 64, 3, seed=300)
        write_synthetic_dataset(held, tuple(CLASSES), 60, 64, 3, seed=301)
    else:
        from galsim_galaxies import write_dataset

        write_dataset(train, per_class, seed=300)
        write_dataset(held, 60, seed=301)
    return train, held


def accuracy(train: Path, held: Path, work: Path, seed: int, weights: str) -> tuple[float, float]:
    import zoo

    started = time.perf_counter()
    run = zoo.finetune(
        "astro_cnn", train, work / "run", seed=seed, weights=weights, progress=False, force=True
    )
    return held_out_accuracy(run, held), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("renderers", nargs="+", choices=("zoo", "galsim"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument(
        "--weights",
        nargs="+",
        default=["simulated", "none"],
        help="weights to compare (catalog names or files); 'none' trains from scratch",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zoo-bench-"))
    os.environ["ZOO_HOME"] = str(work / "home")
    print(f"{args.per_class} images per class; seeds {args.seeds}")
    print(
        "| renderer | weights | held-out accuracy (per seed) | mean | over scratch | minutes per run |"
    )
    print("|---|---|---|---|---|---|")
    for renderer in args.renderers:
        train, held = write_sets(renderer, work, args.per_class)
        means = {}
        for weights in sorted(args.weights, key=lambda w: w != "none"):  # scratch first
            rows = [accuracy(train, held, work, seed, weights) for seed in args.seeds]
            means[weights] = statistics.mean(r[0] for r in rows)
            gain = means[weights] - means.get("none", means[weights])
            print(
                f"| {renderer} | {Path(weights).name} | {', '.join(f'{r[0]:.3f}' for r in rows)} "
                f"| {means[weights]:.3f} | {100 * gain:+.1f} points "
                f"| {statistics.mean(r[1] for r in rows) / 60:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
