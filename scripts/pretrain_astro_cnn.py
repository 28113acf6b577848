"""Pretrain astro_cnn on the galaxy simulator with an auxiliary task; write the weights zoo ships.

The task never sees a class label: from each image the network regresses the parameters
the simulator drew it with (``zoo.data.synth.PARAMETERS``: size, Sérsic index, axis
ratio, bulge fraction, arm count and pitch, bar, dust lane, merger separation), the
auxiliary-task recipe of seed 001. Features that predict morphology transfer to any
labelling of it, which is what fine-tuning then needs.

Data recipe (recorded in the output's JSON beside the weights): ``--per-class`` images
of each of the seven classes at 64 pixels, seed ``--seed`` (distinct from the seeds the
tests and benchmarks use), each fed half the time as flux (as a FITS file holds it) and
half the time as an 8-bit rendering a PNG holds, so the features serve both. Each galaxy
is observed in a random way (``zoo.data.synth_domain``: pixel scale, PSF, noise,
backgrounds, stretch), so that the features carry morphology rather than one renderer's
look (``--observing survey`` renders as ``zoo data synth`` does, the recipe before issue
20). Targets are standardised; the loss is the mean squared error; 10% is held out.

From random weights the defaults take about two hours per band count on a 2-core CPU.
The shipped 3-band file continued the first (survey-rendered) recipe's weights on
randomised observing, 30 minutes:

    python scripts/pretrain_astro_cnn.py --bands 3 --out zoo/pretrained/astro_cnn_sim3.weights.h5 \
        --per-class 1500 --epochs 8 --lr 1e-3 --init PREVIOUS_astro_cnn_sim3.weights.h5

and the 1-band file is still the first recipe's (``--observing survey``, 3000 per class,
20 epochs); each file's JSON beside it records how it was made.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

SIZE = 64


def simulate(
    per_class: int, bands: int, seed: int, randomised: bool
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images (flux or 8-bit rendering, half each) and their parameters, shuffled.

    ``randomised`` observes each galaxy in a random way (``zoo.data.synth_domain``) and
    renders the 8-bit half with random stretches; otherwise as ``zoo data synth`` does.
    """
    from zoo.data import synth, synth_domain
    from zoo.data.synth_config import CLASSES

    rng = np.random.default_rng([seed, bands])
    images, targets = [], []
    for kind in CLASSES:
        for index in range(per_class):
            image_rng = synth._image_rng(seed, kind, index)
            if randomised:
                image, params = synth_domain.render_randomised(kind, image_rng, SIZE, bands)
            else:
                image, params = synth.render_galaxy_with_parameters(kind, image_rng, SIZE, bands)
            if rng.uniform() < 0.5:
                stretch = (
                    synth_domain.random_stretch(image, rng)
                    if randomised
                    else synth.asinh_to_uint8(image)
                )
                image = stretch.astype("float32")
            images.append(image)
            targets.append([params[name] for name in synth.PARAMETERS])
    order = rng.permutation(len(images))
    return (
        np.stack(images)[order],
        np.array(targets, "float32")[order],
        list(synth.PARAMETERS),
    )


def build(bands: int, outputs: int) -> tuple[object, object]:
    """astro_cnn behind its asinh preprocessing, and a small regression head on its features."""
    import keras

    from zoo.plugins.astro import astro_cnn
    from zoo.preprocessing import Preprocessing

    backbone = astro_cnn((SIZE, SIZE, bands))
    images = keras.Input((SIZE, SIZE, bands))
    features = backbone(Preprocessing("asinh")(images))
    hidden = keras.layers.Dense(128, activation="relu")(features)
    model = keras.Model(images, keras.layers.Dense(outputs)(hidden))
    return backbone, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bands", type=int, choices=(1, 3), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-class", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--init",
        type=Path,
        help="start from these astro_cnn weights (continued pretraining) instead of random ones",
    )
    parser.add_argument(
        "--observing",
        choices=("randomised", "survey"),
        default="randomised",
        help="observe each galaxy in a random way (the default), or as zoo data synth does",
    )
    args = parser.parse_args()

    import keras

    keras.utils.set_random_seed(args.seed)
    started = time.monotonic()
    images, targets, names = simulate(
        args.per_class, args.bands, args.seed, args.observing == "randomised"
    )
    mean, std = targets.mean(0), targets.std(0) + 1e-6
    scaled = (targets - mean) / std
    held = len(images) // 10
    backbone, model = build(args.bands, len(names))
    if args.init:
        backbone.load_weights(args.init)
    steps = args.epochs * int(np.ceil((len(images) - held) / args.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, steps, warmup_target=args.lr, warmup_steps=steps // 20, alpha=0.02
    )
    model.compile(keras.optimizers.AdamW(schedule, weight_decay=1e-4), loss="mse")
    model.fit(
        images[held:],
        scaled[held:],
        validation_data=(images[:held], scaled[:held]),
        batch_size=args.batch_size,
        epochs=args.epochs,
        verbose=2,
    )
    predicted = model.predict(images[:held], verbose=0)
    residual = ((predicted - scaled[:held]) ** 2).mean(0)
    r2 = {name: round(float(1 - r), 3) for name, r in zip(names, residual, strict=True)}

    args.out.parent.mkdir(parents=True, exist_ok=True)
    backbone.save_weights(args.out)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    record = {
        "weights": args.out.name,
        "sha256": digest,
        "backbone": f"astro_cnn, input {SIZE}x{SIZE}x{args.bands}, width 16",
        "task": "regress zoo.data.synth.PARAMETERS (standardised), mean squared error",
        "data": {
            "per_class": args.per_class,
            "classes": 7,
            "size": SIZE,
            "bands": args.bands,
            "seed": args.seed,
            "observing": (
                "randomised per image (zoo.data.synth_domain): pixel scale, PSF family and "
                "width, noise model, sky, backgrounds, stars, star-forming knots"
                if args.observing == "randomised"
                else "as zoo data synth renders"
            ),
            "inputs": (
                "half flux, half 8-bit with a random stretch (asinh, log, sqrt, linear)"
                if args.observing == "randomised"
                else "half flux, half 8-bit asinh rendering"
            ),
            "held_out": held,
        },
        "training": {
            "initialised_from": (
                f"{args.init.name} (sha256 {hashlib.sha256(args.init.read_bytes()).hexdigest()})"
                if args.init
                else "random"
            ),
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "optimizer": f"AdamW lr {args.lr}, weight decay 1e-4, warm-up then cosine",
        },
        "held_out_r2": r2,
        "minutes": round((time.monotonic() - started) / 60, 1),
        "command": (
            f"python scripts/pretrain_astro_cnn.py --bands {args.bands} --out {args.out} "
            f"--per-class {args.per_class} --epochs {args.epochs} --batch-size {args.batch_size} "
            f"--lr {args.lr} --seed {args.seed} --observing {args.observing}"
            + (f" --init {args.init}" if args.init else "")
        ),
    }
    args.out.with_suffix("").with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
