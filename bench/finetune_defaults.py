"""The fine-tuning defaults, measured: what each one adds, and what the defaults reach.

``ablation``: astro_cnn from scratch on the four default synthetic classes, adding the
from-scratch defaults one at a time to the old recipe (constant rate, early stopping on
lagging batch-norm statistics): warm-up and cosine decay, label smoothing, weight decay,
re-estimated batch-norm statistics. ``seven``: the defaults alone (``zoo finetune
astro_cnn DATA --out RUN``) on all seven classes, from scratch (``--weights none``) and
from the shipped pretrained weights. Test accuracy is on a held-out set of the same
classes rendered with another seed. Figures go to BENCHMARKS.md.

``faces``: scikit-image's face subset (real photographs, 2 classes, 200 images): the old
recipe, the defaults with and without re-estimated batch norm, and the shipped weights.

Run: python bench/finetune_defaults.py ablation --seeds 0 1
     python bench/finetune_defaults.py seven --seeds 0 1
     python bench/finetune_defaults.py faces --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

#: The old recipe, then each default added to it (settings of zoo.finetune).
ABLATION = {
    "old: constant 1e-3, patience 3": {
        "schedule": "constant", "lr": 1e-3, "patience": 3, "label_smoothing": 0.0,
        "weight_decay": 0.0, "precise_bn": False,
    },
    "+ warm-up, cosine, 2e-3, patience 12": {
        "label_smoothing": 0.0, "weight_decay": 0.0, "precise_bn": False,
    },
    "+ label smoothing 0.1": {"weight_decay": 0.0, "precise_bn": False},
    "+ weight decay 1e-4": {"precise_bn": False},
    "+ re-estimated batch norm (the defaults)": {},
}  # fmt: skip


def held_out_accuracy(run, held: Path) -> float:
    from zoo.data.dataset import load_image_set
    from zoo.train.evaluate import predict

    images = load_image_set(held, labels=run.labels, all_in="test")
    probabilities = predict(run.model, images.samples, run.geometry)
    return float((probabilities.argmax(1) == [s.label for s in images.samples]).mean())


def finetune(data: Path, out: Path, seed: int, **settings) -> tuple[object, float]:
    import zoo

    started = time.perf_counter()
    run = zoo.finetune("astro_cnn", data, out, seed=seed, progress=False, force=True, **settings)
    return run, time.perf_counter() - started


FACES = {
    "old recipe: constant 1e-3, patience 3": {
        "schedule": "constant", "lr": 1e-3, "patience": 3, "label_smoothing": 0.0,
        "weight_decay": 0.0, "precise_bn": False, "weights": "none",
    },
    "defaults without re-estimated batch norm": {"precise_bn": False, "weights": "none"},
    "defaults, from scratch (--weights none)": {"weights": "none"},
    "defaults, shipped 1-band weights": {},
}  # fmt: skip


def faces(work: Path, seeds: list[int]) -> None:
    """Real photographs no one here made: scikit-image's 100 faces and 100 non-faces,
    25x25 grey, fine-tuned at 48 px; accuracy on the run's own test split, and the saved
    model's validation accuracy in inference mode against training mode (batch-norm lag)."""
    import numpy as np
    from PIL import Image
    from skimage.data import lfw_subset

    from zoo.data.dataset import load_image_set
    from zoo.train.evaluate import predict

    data = work / "faces"
    for index, image in enumerate(lfw_subset()):
        folder = data / ("face" if index < 100 else "not_face")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(image * 255).astype("uint8")).save(folder / f"{index:03d}.png")
    print(f"scikit-image lfw_subset: 200 grey 25x25 photographs, at 48 px; seeds {seeds}")
    print("| recipe | test accuracy (per seed) | mean | val: inference / training mode | minutes |")
    print("|---|---|---|---|---|")
    for name, settings in FACES.items():
        scores, modes, minutes = [], [], []
        for seed in seeds:
            run, seconds = finetune(data, work / "run", seed, image_size=(48,), **dict(settings))
            scores.append(run.metrics["test"]["accuracy"])
            images = load_image_set(data)
            val = images.split("val")
            truth = np.array([s.label for s in val])
            inference = (predict(run.model, val, run.geometry).argmax(1) == truth).mean()
            training = (_training_mode(run, val).argmax(1) == truth).mean()
            modes.append(f"{inference:.2f} / {training:.2f}")
            minutes.append(seconds / 60)
        print(
            f"| {name} | {', '.join(f'{s:.3f}' for s in scores)} | {statistics.mean(scores):.3f} | "
            f"{'; '.join(modes)} | {statistics.mean(minutes):.1f} |",
            flush=True,
        )


def _training_mode(run, samples):
    import numpy as np

    from zoo.data.pipeline import image_dataset

    batches = image_dataset(samples, run.geometry, batch_size=len(samples), labels=False)
    return np.concatenate([run.model(batch, training=True).numpy() for batch in batches])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("experiment", choices=("ablation", "seven", "faces"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--per-class", type=int, default=150)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zoo-bench-"))
    os.environ["ZOO_HOME"] = str(work / "home")
    from zoo.data.synth import write_synthetic_dataset
    from zoo.data.synth_config import CLASSES, DEFAULT_CLASSES

    if args.experiment == "faces":
        faces(work, args.seeds)
        return
    classes = DEFAULT_CLASSES if args.experiment == "ablation" else tuple(CLASSES)
    data, held = work / "data", work / "held"
    write_synthetic_dataset(data, classes, args.per_class, 64, 3, seed=100)
    write_synthetic_dataset(held, classes, 60, 64, 3, seed=101)
    if args.experiment == "ablation":
        rows = {
            name: {"strategy": "full", "weights": "none", **settings}
            for name, settings in ABLATION.items()
        }
    else:
        rows = {
            "defaults, from scratch (--weights none)": {"weights": "none"},
            "defaults, shipped weights": {},
        }
    print(
        f"{len(classes)} classes, {args.per_class} images each at 64 px; held-out test: 60 each; seeds {args.seeds}"
    )
    print("| recipe | held-out accuracy (per seed) | mean | minutes per run |")
    print("|---|---|---|---|")
    for name, settings in rows.items():
        scores, minutes = [], []
        for seed in args.seeds:
            run, seconds = finetune(data, work / "run", seed, **dict(settings))
            scores.append(held_out_accuracy(run, held))
            minutes.append(seconds / 60)
        per_seed = ", ".join(f"{s:.3f}" for s in scores)
        print(
            f"| {name} | {per_seed} | {statistics.mean(scores):.3f} | {statistics.mean(minutes):.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
