"""Do astro_cnn's shipped weights, without fine-tuning, put like galaxies together?

For every image, the share of its 10 nearest neighbours (cosine, ``zoo embed`` then the
search ``zoo similar`` runs) that have its class; the mean over images is the purity.
``zoo``: zoo's synthetic galaxies, 150 per class, on a seed no test or pretraining uses
(the four default classes, and all seven). ``galsim``: bench/galsim_galaxies.py's five
classes, 150 each. The goal of issue 21: purity at least 0.90 on zoo's default classes.

Run: python bench/embeddings.py --weights simulated
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def purity(labels: list[str], vectors: np.ndarray, k: int = 10) -> float:
    from zoo.embeddings.search import neighbour_rows

    rows, _ = neighbour_rows(vectors, k)
    truth = np.array(labels)
    return float((truth[rows] == truth[:, None]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default="simulated")
    parser.add_argument("--per-class", type=int, default=150)
    parser.add_argument("--sets", nargs="+", default=["zoo4", "zoo7", "galsim"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zoo-bench-"))
    os.environ["ZOO_HOME"] = str(work / "home")
    from zoo.data.synth import write_synthetic_dataset
    from zoo.data.synth_config import CLASSES, DEFAULT_CLASSES
    from zoo.embeddings import embed

    print(f"astro_cnn, weights {args.weights}, {args.per_class} images per class, k = 10")
    print("| images | classes | 10-NN purity | minutes |")
    print("|---|---|---|---|")
    for name in args.sets:
        data = work / name
        if name == "galsim":
            from galsim_galaxies import CLASSES as GALSIM_CLASSES
            from galsim_galaxies import write_dataset

            write_dataset(data, args.per_class, seed=400)
            classes = GALSIM_CLASSES
        else:
            classes = DEFAULT_CLASSES if name == "zoo4" else tuple(CLASSES)
            write_synthetic_dataset(data, classes, args.per_class, 64, 3, seed=400)
        started = time.perf_counter()
        embeddings, _ = embed("astro_cnn", data, work / f"{name}.npy", weights=args.weights)
        score = purity(embeddings.labels, embeddings.vectors)
        minutes = (time.perf_counter() - started) / 60
        print(f"| {name} | {len(classes)} | {score:.3f} | {minutes:.1f} |", flush=True)


if __name__ == "__main__":
    main()
