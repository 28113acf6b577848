"""Exporting for TF Serving: how long an export (with its clean-process check) takes, and how
fast the exported model predicts through ``serving_default`` against the Keras model.

For astro_cnn (64 px) and ResNet50 (96 px, random weights: the timing does not depend on
them): one head epoch on synthetic galaxies, then ``zoo.export``; then images per second
through the SavedModel's ``serving_default`` (PNG bytes in: decoding included) and
``predict_images`` (pixels in), and through the in-process Keras model's compiled
``predict_on_batch`` (pixels in), at
batch 1 and 32, all in one process. Run: python bench/export.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

CASES = {"astro_cnn": (64, {}), "resnet50": (96, {"weights": "none"})}


def images_per_second(call, batch, repeat: int) -> float:
    """``call`` is a signature (takes images=...) or a Keras model (takes the batch)."""
    if hasattr(call, "structured_input_signature"):
        run = lambda: call(images=batch)  # noqa: E731
    else:  # Keras's own compiled inference path
        run = lambda: call.predict_on_batch(batch)  # noqa: E731
    run()  # traced and warm
    started = time.perf_counter()
    for _ in range(repeat):
        run()
    return repeat * len(batch) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zoo-bench-"))
    os.environ["ZOO_HOME"] = str(work / "home")
    import tensorflow as tf

    import zoo
    from zoo.data.synth import write_synthetic_dataset

    data = work / "galaxies"
    write_synthetic_dataset(data, per_class=40, size=64, bands=3, seed=0)
    files = sorted(data.rglob("*.png"))[:32]
    blobs = [path.read_bytes() for path in files]
    print(
        "| backbone | export + check | batch | serving_default (bytes) | predict_images | Keras | bytes / Keras |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for backbone, (size, settings) in CASES.items():
        run = zoo.finetune(
            backbone, data, work / backbone, strategy="full", epochs=1, image_size=(size,),
            progress=False, **settings,
        )  # fmt: skip
        started = time.perf_counter()
        done = zoo.export(run.path, work / "models", backbone)
        export_seconds = time.perf_counter() - started
        served = tf.saved_model.load(str(done.path))
        pixels = np.stack(
            [
                tf.image.resize(
                    tf.io.decode_png(b, channels=3), (size, size), antialias=True
                ).numpy()
                for b in blobs
            ]
        ).astype("float32")
        for batch in (1, 32):
            encoded = tf.constant(blobs[:batch])
            floats = tf.constant(pixels[:batch])
            by_bytes = images_per_second(served.signatures["serving_default"], encoded, args.repeat)
            by_pixels = images_per_second(served.signatures["predict_images"], floats, args.repeat)
            keras_rate = images_per_second(run.model, floats, args.repeat)
            print(
                f"| {backbone} ({size} px) | {export_seconds:.1f} s | {batch} | {by_bytes:.0f}/s | "
                f"{by_pixels:.0f}/s | {keras_rate:.0f}/s | {by_bytes / keras_rate:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
