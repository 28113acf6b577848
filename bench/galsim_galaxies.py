"""Galaxies rendered by GalSim, the field's standard image simulator, and no zoo code.

The held-out test of how far astro_cnn's shipped weights carry beyond zoo's own
simulator (issue 20): other light profiles (GalSim's Sérsic, inclined exponential disks,
random-walk star-forming knots, sheared merging pairs), other PSFs (Kolmogorov seeing,
an obscured Airy pattern for a space telescope, aberrated optics under seeing), a pixel
scale drawn per image, CCD noise with gain and read noise, and survey stretches for the
8-bit cutouts (astropy's Lupton RGB, or a log stretch of a percentile interval) that
zoo's renderer never uses. Classes are folders of PNGs, as ``zoo finetune`` reads them.

Run: python bench/galsim_galaxies.py OUT --per-class 60 --seed 1
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

CLASSES = ("smooth_round", "smooth_cigar", "edge_on", "clumpy_disk", "merger")
SIZE = 64
#: Relative flux per band (reddest first, as zoo's bands and a PNG's R, G, B) of each
#: stellar population: old spheroids are red, disks bluer, star-forming knots blue.
COLOURS = {
    "old": (1.0, 0.72, 0.48),
    "disk": (0.85, 0.8, 0.7),
    "young": (0.45, 0.75, 1.1),
}


def _colour(rng: np.random.Generator, name: str) -> np.ndarray:
    """A population's colour with a little scatter, normalised to a mean of one."""
    colour = np.array(COLOURS[name]) * np.exp(rng.normal(0, 0.08, 3))
    return colour / colour.mean()


def _angle(rng: np.random.Generator):
    import galsim

    return rng.uniform(0, math.pi) * galsim.radians


def _components(kind: str, rng: np.random.Generator) -> list[tuple[object, np.ndarray]]:
    """Unit-flux GalSim profiles of one galaxy (sizes in arcsec) with their band colours."""
    import galsim

    seed = int(rng.integers(1, 2**31))
    if kind in ("smooth_round", "smooth_cigar"):
        n = rng.uniform(3.0, 6.0) if kind == "smooth_round" else rng.uniform(2.0, 4.0)
        q = rng.uniform(0.75, 1.0) if kind == "smooth_round" else rng.uniform(0.25, 0.55)
        profile = galsim.Sersic(n, half_light_radius=rng.uniform(0.6, 2.0))
        return [(profile.shear(q=q, beta=_angle(rng)), _colour(rng, "old"))]
    if kind == "edge_on":
        hlr, beta = rng.uniform(1.0, 2.6), _angle(rng)
        disk = galsim.InclinedExponential(
            rng.uniform(84, 90) * galsim.degrees,
            half_light_radius=hlr,
            scale_h_over_r=rng.uniform(0.06, 0.16),
        ).rotate(beta)
        bulge = galsim.Sersic(rng.uniform(1.5, 3.5), half_light_radius=hlr * rng.uniform(0.15, 0.3))
        share = rng.uniform(0.05, 0.25)
        return [
            ((1 - share) * disk, _colour(rng, "disk")),
            (share * bulge.shear(q=rng.uniform(0.6, 0.9), beta=beta), _colour(rng, "old")),
        ]
    if kind == "clumpy_disk":
        hlr, shear = rng.uniform(1.0, 2.6), galsim.Shear(q=rng.uniform(0.5, 1.0), beta=_angle(rng))
        knots = galsim.RandomKnots(
            int(rng.integers(20, 80)), half_light_radius=hlr, rng=galsim.BaseDeviate(seed)
        )
        knot_share = rng.uniform(0.3, 0.6)
        bulge_share = rng.uniform(0.0, 0.15)
        disk_share = 1 - knot_share - bulge_share
        return [
            (
                disk_share * galsim.Exponential(half_light_radius=hlr).shear(shear),
                _colour(rng, "disk"),
            ),
            (knot_share * knots.shear(shear), _colour(rng, "young")),
            (bulge_share * galsim.DeVaucouleurs(half_light_radius=0.3), _colour(rng, "old")),
        ]
    if kind == "merger":
        hlr = rng.uniform(0.5, 1.4)
        separation, direction = hlr * rng.uniform(1.5, 3.0), rng.uniform(0, 2 * math.pi)
        offset = 0.5 * separation * np.array([math.cos(direction), math.sin(direction)])
        primary = rng.uniform(0.5, 0.75)
        parts = []
        for sign, share in ((1, primary), (-1, 1 - primary)):
            galaxy = galsim.Sersic(
                rng.uniform(1.0, 4.0), half_light_radius=hlr * rng.uniform(0.6, 1.0)
            )
            # tidal distortion: a strong shear and a bend (flexion-like) of each partner
            galaxy = galaxy.shear(g1=rng.uniform(-0.45, 0.45), g2=rng.uniform(-0.45, 0.45))
            parts.append((share * galaxy.shift(*(sign * offset)), _colour(rng, "old")))
        tail = galsim.RandomKnots(
            40, half_light_radius=separation, rng=galsim.BaseDeviate(seed)
        ).shear(
            q=rng.uniform(0.15, 0.35),
            beta=direction * galsim.radians + math.pi / 2 * galsim.radians,
        )
        parts.append((rng.uniform(0.08, 0.2) * tail, _colour(rng, "young")))
        return parts
    raise ValueError(f"unknown class {kind!r}; known: {', '.join(CLASSES)}")


def _psf(rng: np.random.Generator, band: int):
    """One of three PSF families, its width drawn per image and shrinking to the red."""
    import galsim

    family = rng.integers(3)
    scale = (1.0, 1.05, 1.1)[band]
    if family == 0:  # ground-based seeing
        return galsim.Kolmogorov(fwhm=rng.uniform(0.5, 1.3) * scale)
    if family == 1:  # a space telescope: obscured Airy pattern and pixel-level jitter
        return galsim.Convolve(
            galsim.Airy(lam_over_diam=rng.uniform(0.06, 0.14) * scale, obscuration=0.3),
            galsim.Gaussian(fwhm=0.05),
        )
    aberrations = rng.normal(0, 0.15, 4)
    optics = galsim.OpticalPSF(
        lam_over_diam=0.2 * scale,
        defocus=aberrations[0],
        coma1=aberrations[1],
        astig1=aberrations[2],
        astig2=aberrations[3],
        obscuration=0.35,
    )
    return galsim.Convolve(optics, galsim.Kolmogorov(fwhm=rng.uniform(0.4, 0.9) * scale))


def render(kind: str, rng: np.random.Generator) -> np.ndarray:
    """One galaxy, sky-subtracted counts in three bands, shape (SIZE, SIZE, 3)."""
    import galsim

    pixel_scale = rng.uniform(0.12, 0.3)  # arcsec per pixel
    flux = 10 ** rng.uniform(3.8, 5.2)
    sky = 10 ** rng.uniform(1.5, 2.7) * (pixel_scale / 0.2) ** 2
    gain, read_noise = rng.uniform(1.0, 4.0), rng.uniform(2.0, 8.0)
    shift = rng.uniform(-0.05, 0.05, 2) * SIZE * pixel_scale
    parts = _components(kind, rng)
    psf_seed = int(rng.integers(2**31))
    bands = []
    for band in range(3):
        light = galsim.Add([profile * (flux * colour[band]) for profile, colour in parts])
        psf = _psf(np.random.default_rng(psf_seed), band)
        image = galsim.Convolve(light.shift(*shift), psf).drawImage(
            nx=SIZE, ny=SIZE, scale=pixel_scale
        )
        noise = galsim.CCDNoise(
            galsim.BaseDeviate(int(rng.integers(1, 2**31))),
            sky_level=sky,
            gain=gain,
            read_noise=read_noise,
        )
        image.addNoise(noise)
        bands.append(image.array)
    return np.stack(bands, axis=-1).astype(np.float32)


def to_rgb(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An 8-bit cutout the way surveys' viewers make them: Lupton RGB, or a log stretch."""
    from astropy.visualization import LogStretch, ManualInterval, make_lupton_rgb

    noise = 1.4826 * float(np.median(np.abs(image - np.median(image))))
    if rng.uniform() < 0.5:
        r, g, b = (image[..., band] for band in range(3))
        return make_lupton_rgb(
            r, g, b, minimum=0, stretch=noise * rng.uniform(20, 80), Q=rng.uniform(4, 12)
        )
    top = float(np.percentile(image, rng.uniform(99.5, 99.95)))
    interval = ManualInterval(vmin=noise * rng.uniform(0.5, 1.5), vmax=max(top, 10 * noise))
    stretch = LogStretch(a=rng.uniform(100, 1000))
    scaled = np.stack([stretch(interval(image[..., band])) for band in range(3)], axis=-1)
    return np.round(np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def write_dataset(out: Path, per_class: int, seed: int, classes: tuple[str, ...] = CLASSES) -> Path:
    """out/<class>/<index>.png for every class, each image from its own seeded generator."""
    from PIL import Image

    for number, kind in enumerate(classes):
        folder = out / kind
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            rng = np.random.default_rng([seed, number, index])
            Image.fromarray(to_rgb(render(kind, rng), rng)).save(folder / f"{index:05d}.png")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    write_dataset(args.out, args.per_class, args.seed)


if __name__ == "__main__":
    main()
