"""The feature cache against its floor and against training without it (issue 4).

For the ``head`` strategy over a fixed number of epochs, measured in one process:

- floor: one forward pass of the backbone (with its preprocessing and the same tf.data
  decoding) over the whole data set;
- cached: ``zoo.finetune`` with the cache on, starting from an empty cache (the run
  computes the features once, then trains the head on them);
- warm: the same run again, with the features already on disk;
- uncached: ``zoo.finetune --no-cache``, which pushes every image through the frozen
  backbone in every epoch.

Goals: cached within 1.5x of the floor, and at least 5x faster than uncached. Whole
``zoo.finetune`` calls are timed (data scan, model build, evaluation and writing the run
directory included), so the ratios are what a user sees.

Run: python bench/finetune_cache.py [--backbone resnet50] [--image-size 96] [--per-class 100]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="zoo-bench-"))
    os.environ["ZOO_HOME"] = str(work / "home")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import zoo
    from zoo.data.dataset import load_image_set
    from zoo.data.images import ImageGeometry
    from zoo.data.pipeline import image_dataset
    from zoo.data.synth import write_synthetic_dataset
    from zoo.train.model import build_encoder

    data = work / "galaxies"
    write_synthetic_dataset(data, per_class=args.per_class, size=64, bands=3, seed=0)
    images = load_image_set(data)
    size = (args.image_size, args.image_size)

    backbone = zoo.create_backbone(args.backbone, input_shape=(*size, 3))
    encoder = build_encoder(backbone, backbone.backbone_spec.preprocessing)
    dataset = image_dataset(
        images.samples, ImageGeometry(size, 3), batch_size=args.batch_size, labels=False
    )
    encoder.predict(dataset.take(1), verbose=0)  # build the predict function outside the timing
    start = time.perf_counter()
    encoder.predict(dataset, verbose=0)
    floor = time.perf_counter() - start

    settings = {
        "strategy": "head",
        "weights": "none",  # random: the timing does not depend on them
        "epochs": args.epochs,
        "patience": args.epochs,
        "augment": False,
        "image_size": (args.image_size,),
        "batch_size": args.batch_size,
        "progress": False,
    }

    def timed(name: str, **extra: object) -> float:
        start = time.perf_counter()
        zoo.finetune(args.backbone, data, work / name, **(settings | extra))
        return time.perf_counter() - start

    cached = timed("cached")
    warm = timed("warm")
    uncached = timed("uncached", cache=False)

    print(
        f"{args.backbone} at {args.image_size}px, {len(images.samples)} images, head strategy, "
        f"{args.epochs} epochs, batch {args.batch_size}"
    )
    print(f"floor (one forward pass)   {floor:8.1f} s   1.00 x floor")
    print(f"cached, empty cache        {cached:8.1f} s   {cached / floor:5.2f} x floor")
    print(f"cached, warm cache         {warm:8.1f} s   {warm / floor:5.2f} x floor")
    print(f"uncached                   {uncached:8.1f} s   {uncached / floor:5.2f} x floor")
    print(f"uncached / cached          {uncached / cached:8.2f}")


if __name__ == "__main__":
    main()
