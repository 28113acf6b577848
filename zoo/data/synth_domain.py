"""Domain-randomised galaxies: the simulator's morphologies under many ways of observing them.

Pretraining on one renderer teaches a network that renderer's PSF, noise and stretch as
much as galaxies (issue 20: the shipped weights gained 42 points over scratch on zoo's
own galaxies and about 6 on another simulator's). Here everything that depends on the
instrument and the pipeline rather than the galaxy is drawn per image, wider than any
one survey, so that only morphology is worth learning:

- pixel scale: the galaxy sampled 0.6-1.8 times as finely (its apparent size with it);
- PSF: Gaussian, Moffat (beta 1.5-6) or a core-and-halo double Gaussian, FWHM 1-6
  pixels at 64 px, slightly elliptical, chromatic or not;
- noise: photon and read noise, background-limited Gaussian noise, or noise correlated
  by resampling (as in co-added images); sky from 5 to 1000 electrons per pixel;
- backgrounds: a residual sky gradient and offset, and foreground stars;
- star-forming knots on disks, in place of smooth light;
- for 8-bit inputs: asinh, log, square-root or linear stretches with random limits and
  colour balance, as survey cutout services make them.

The morphological parameters returned are those of ``zoo.data.synth`` (the size scaled
with the pixel scale), so pretraining targets stay the same.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from zoo.data import synth
from zoo.data.synth_config import BANDS_RANGE, SIZE_RANGE, check_class, check_range

ZOOM_RANGE = (0.6, 1.8)
FWHM_RANGE = (1.0, 6.0)  # pixels of a 64-pixel image
SKY_RANGE = (5.0, 1000.0)  # electrons per pixel of a 64-pixel image
FLUX_RANGE = (10**3.5, 10**5.5)
DISK_CLASSES = ("edge_on", "barred_spiral", "tight_spiral", "loose_spiral")


def render_randomised(
    kind: str, rng: np.random.Generator, size: int = 64, bands: int = 3
) -> tuple[np.ndarray, dict[str, float]]:
    """One galaxy observed in a random way: float32 sky-subtracted flux (size, size, bands)
    and the parameters it was drawn with."""
    check_class(kind)
    size = check_range("size", size, SIZE_RANGE)
    bands = check_range("bands", bands, BANDS_RANGE)
    zoom = synth._log_uniform(rng, *ZOOM_RANGE)
    base = synth._make_canvas(size)
    canvas = dataclasses.replace(base, x=base.x / zoom, y=base.y / zoom)
    galaxy = synth._RECIPES[kind](rng, canvas)
    if kind in DISK_CLASSES and rng.uniform() < 0.5:
        galaxy = _with_knots(galaxy, rng, canvas)
    x_b = synth._band_positions(bands)
    flux = synth._log_uniform(rng, *FLUX_RANGE)
    light = synth._band_images(galaxy, rng, x_b)
    light *= flux / light.sum(axis=(1, 2)).mean()
    light += _stars(rng, base, x_b, flux)
    kernels = _psf_kernels(rng, base, x_b)
    blurred = np.fft.irfft2(np.fft.rfft2(light) * np.fft.rfft2(kernels), s=light.shape[-2:])
    p = base.pad
    signal = np.clip(blurred[:, p : p + size, p : p + size], 0.0, None)
    image = _noisy(signal, rng, x_b, size)
    params = dict(galaxy.params, size=galaxy.params["size"] * zoom)
    return np.ascontiguousarray(np.moveaxis(image, 0, -1), dtype=np.float32), params


def random_stretch(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An 8-bit rendering of flux with a stretch, limits and colour balance drawn at random."""
    noise = float(np.median([synth._robust_noise(image[..., b]) for b in range(image.shape[-1])]))
    x = image / max(noise, 1e-12) * np.exp(rng.normal(0.0, 0.1, image.shape[-1]))
    kind = rng.choice(["asinh", "log", "sqrt", "linear"])
    if kind == "asinh":
        return synth.asinh_to_uint8(
            x, softening=synth._log_uniform(rng, 0.5, 5.0), white=synth._log_uniform(rng, 50, 1000)
        )
    low = rng.uniform(-1.0, 1.5)
    high = max(float(np.percentile(x, rng.uniform(99.0, 99.95))), low + 5.0)
    t = np.clip((x - low) / (high - low), 0.0, 1.0)
    if kind == "log":
        a = synth._log_uniform(rng, 30, 1000)
        t = np.log1p(a * t) / math.log1p(a)
    elif kind == "sqrt":
        t = np.sqrt(t)
    return np.round(t * 255).astype(np.uint8)


def _with_knots(galaxy: synth._Galaxy, rng: np.random.Generator, canvas: synth._Canvas):
    """Blue star-forming knots placed where the galaxy's light is, taking 5-30% of it."""
    total = sum(c.fraction * c.light for c in galaxy.components)
    chosen = rng.choice(total.size, size=int(rng.integers(8, 40)), p=(total / total.sum()).ravel())
    width = rng.uniform(0.4, 1.2)
    knots = np.zeros_like(total)
    for x0, y0 in zip(canvas.x.flat[chosen], canvas.y.flat[chosen], strict=True):
        knots += rng.uniform(0.3, 1.0) * np.exp(
            -0.5 * ((canvas.x - x0) ** 2 + (canvas.y - y0) ** 2) / width**2
        )
    share = rng.uniform(0.05, 0.3)
    components = [
        dataclasses.replace(c, fraction=c.fraction * (1 - share)) for c in galaxy.components
    ]
    components.append(synth._Component(synth._unit(knots), share, rng.uniform(-0.6, -0.2)))
    return dataclasses.replace(galaxy, components=components)


def _stars(
    rng: np.random.Generator, canvas: synth._Canvas, x_b: np.ndarray, flux: float
) -> np.ndarray:
    """Up to two foreground point sources anywhere in the frame, before the PSF."""
    stars = np.zeros((len(x_b), *canvas.x.shape), np.float32)
    for _ in range(int(rng.binomial(2, 0.12))):
        row, col = rng.integers(canvas.pad, canvas.pad + canvas.size, size=2)
        sed = np.exp(rng.uniform(-0.4, 0.6) * x_b)
        stars[:, row, col] += flux * synth._log_uniform(rng, 0.02, 1.0) * sed / sed.mean()
    return stars


def _psf_kernels(rng: np.random.Generator, canvas: synth._Canvas, x_b: np.ndarray) -> np.ndarray:
    """Unit-sum PSFs per band, centred on pixel (0, 0), from one of three families."""
    n = canvas.x.shape[0]
    wrapped = np.fft.fftfreq(n, 1 / n).astype(np.float32)
    angle, ellipticity = rng.uniform(0, math.pi), rng.uniform(0.0, 0.15)
    cos, sin = math.cos(angle), math.sin(angle)
    u = wrapped[None, :] * cos + wrapped[:, None] * sin
    v = -wrapped[None, :] * sin + wrapped[:, None] * cos
    r2 = u * u * (1 - ellipticity) + v * v / (1 - ellipticity)
    fwhm = synth._log_uniform(rng, *FWHM_RANGE) * canvas.size / 64
    widths = fwhm * np.exp(-rng.uniform(0.0, 0.15) * x_b)
    family = rng.choice(["gaussian", "moffat", "double"])
    beta, halo, halo_share = rng.uniform(1.5, 6.0), rng.uniform(2.0, 4.0), rng.uniform(0.1, 0.3)
    kernels = []
    for width in map(float, widths):
        sigma = width / (2 * math.sqrt(2 * math.log(2)))
        if family == "moffat":
            alpha = width / (2 * math.sqrt(2 ** (1 / beta) - 1))
            kernel = (1 + r2 / alpha**2) ** -beta
        else:
            kernel = np.exp(-0.5 * r2 / sigma**2) / sigma**2
            if family == "double":
                kernel = (1 - halo_share) * kernel + halo_share * np.exp(
                    -0.5 * r2 / (halo * sigma) ** 2
                ) / (halo * sigma) ** 2
        kernels.append(kernel / kernel.sum())
    return np.stack(kernels)


def _noisy(signal: np.ndarray, rng: np.random.Generator, x_b: np.ndarray, size: int) -> np.ndarray:
    """Sky-subtracted counts under one of three noise models, with background residuals."""
    sky_level = synth._log_uniform(rng, *SKY_RANGE) * (64 / size) ** 2
    sky = sky_level * np.exp(rng.uniform(0.0, 0.5) * x_b)[:, None, None]
    model = rng.choice(["photon", "gaussian", "correlated"])
    if model == "gaussian":  # background-limited: the sky's noise alone
        image = signal + rng.normal(0.0, 1.0, signal.shape) * np.sqrt(sky)
    else:
        read_noise = rng.uniform(0.0, 1.0) * math.sqrt(sky_level)
        image = rng.poisson(signal + sky) - sky + rng.normal(0.0, read_noise, signal.shape)
        if model == "correlated":  # resampled onto another grid: neighbours share noise
            image = signal + _correlate(image - signal, rng.uniform(0.4, 0.9))
    sigma = np.sqrt(sky)
    yy, xx = (np.mgrid[0:size, 0:size] - (size - 1) / 2) / size
    direction = rng.uniform(0, 2 * math.pi)
    gradient = xx * math.cos(direction) + yy * math.sin(direction)
    residual = rng.normal(0.0, 0.3) + rng.uniform(0.0, 1.5) * gradient
    return image + sigma * residual[None]


def _correlate(noise: np.ndarray, width: float) -> np.ndarray:
    """Noise smoothed by a Gaussian of ``width`` pixels, rescaled to its former level."""
    size = noise.shape[-1]
    f = np.fft.fftfreq(size).astype(np.float32)
    transfer = np.exp(-2 * (math.pi * width) ** 2 * (f[None, :] ** 2 + f[:, None] ** 2))
    smooth = np.fft.irfft2(np.fft.rfft2(noise) * transfer[:, : size // 2 + 1], s=noise.shape[-2:])
    return smooth * (noise.std() / max(smooth.std(), 1e-12))
