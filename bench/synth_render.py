"""How fast the synthetic galaxy generator renders, per image, by size and band count.

Rendering runs in numpy alone; this tells whether a data set for a test, a demo or
pretraining costs seconds or minutes. Run: python bench/synth_render.py [--images 1000]
"""

from __future__ import annotations

import argparse
import time

from zoo.data import synth
from zoo.data.synth_config import CLASSES


def seconds_per_image(images: int, size: int, bands: int) -> float:
    kinds = list(CLASSES)
    start = time.perf_counter()
    for index in range(images):
        kind = kinds[index % len(kinds)]
        synth.render_galaxy(kind, synth._image_rng(0, kind, index), size=size, bands=bands)
    return (time.perf_counter() - start) / images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    for size, bands in ((64, 3), (64, 1), (128, 3), (64, 5)):
        per_image = seconds_per_image(args.images, size, bands)
        print(f"{size}x{size}x{bands}: {1000 * per_image:.2f} ms per image ({args.images} images)")


if __name__ == "__main__":
    main()
