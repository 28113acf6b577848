"""Synthetic galaxy images from a small physical model, for tests, benchmarks, demos and pretraining.

Real survey cutouts are large, licensed and slow to fetch; these are generated in a few
milliseconds each with numpy alone, are reproducible from a seed, and are labelled by
construction. They are meant to be learnable from morphology only: every nuisance that
a pixel statistic could latch onto is randomised independently of the class.

Light model (each image is the sum of a few components drawn on a padded canvas):

* Spheroids and bulges follow Sérsic profiles (Sérsic 1963, BAAA 6, 41),
  ``I(r) = I_e exp(-b_n [(r / r_e)^(1/n) - 1])``, on elliptical radii
  ``r = sqrt(u^2 + (v / q)^2)``, with ``b_n`` from the asymptotic series of Ciotti &
  Bertin (1999, A&A 352, 447), accurate to better than 1e-4 for the n >= 1 used here.
* Disks are exponential (Sérsic n = 1). A disk of intrinsic thickness ``q0`` seen at
  inclination ``i`` has the axis ratio ``q^2 = cos^2 i + q0^2 sin^2 i`` (Hubble 1926,
  ApJ 64, 321).
* Spiral arms modulate the disk in its own plane along logarithmic spirals,
  ``theta = theta_0 + ln(r / r_0) / tan(pitch) + 2 pi k / m``, the shape real arms follow
  closely (Seigar & James 1998, MNRAS 299, 672; Davis et al. 2012, ApJS 199, 33).
  Tight and loose spirals differ mainly in pitch angle, and like early- and late-type
  spirals somewhat in bulge fraction.
* Bars are Ferrers ellipsoids, ``I = (1 - m^2)^2`` inside ``m < 1`` (Ferrers 1877, QJ Pure
  Appl. Math. 14, 1), and the two arms of a barred spiral start at the bar ends.
* Mergers are two Sérsic galaxies of comparable flux, close or overlapping, with a tidal
  tail along a circular arc and sometimes a bridge between them, the features of
  Toomre & Toomre (1972, ApJ 178, 623).
* Dust lanes in edge-on disks attenuate by ``exp(-tau)`` with ``tau`` proportional to
  1 / wavelength, roughly the optical Milky Way extinction curve (Cardelli, Clayton &
  Mathis 1989, ApJ 345, 245).

Colours: the bands run from red (band 0) to blue (the last band), so a three-band image
shows its reddest band in the red channel, as in Lupton et al. (2004) composites. Each
component's flux in band ``b`` scales as ``exp(s * x_b)``, with ``x_b`` going from +1
(reddest) to -1 (bluest) and a colour slope ``s`` that is positive for old populations
(bulges, bars, ellipticals) and negative for star-forming ones (arms, tidal tails).

Observation: each band is convolved (by FFT) with a Moffat (1969, A&A 3, 455) or Gaussian
PSF of random seeing, slightly sharper in the red (FWHM ~ wavelength^-1/5); sky is added;
counts get Poisson noise on signal plus sky in electrons and Gaussian read noise; and the
sky level is subtracted again, as survey pipelines do with a sky measured over the whole
frame.

Nuisances, drawn independently of the class: total flux (log-uniform over 1.5 dex),
half-light size, position angle, centre offset, seeing, sky level and read noise, and so
the signal-to-noise ratio. Sizes, seeing and sky are quoted for a 64-pixel image and
scaled with the image size, so the size changes only the sampling of the same scene:
the galaxy's total signal-to-noise does not depend on it, the noise per pixel does.

Files: PNG holds an 8-bit asinh stretch of the flux (Lupton et al. 2004, PASP 116, 133) in
units of the image's noise; FITS holds the float32 flux in electrons as a cube of shape
(bands, size, size).
"""

from __future__ import annotations

import functools
import io
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.data.synth_config import (
    BANDS_RANGE,
    DEFAULT_CLASSES,
    SIZE_RANGE,
    SynthConfig,
    check_class,
    check_range,
)
from zoo.fs import write_bytes, write_text
from zoo.progress import Progress

FLUX_RANGE = (10**3.7, 10**5.2)  # electrons, mean over bands: 1.5 dex
SKY_RANGE = (20.0, 200.0)  # electrons per pixel of a 64-pixel image
READ_NOISE_RANGE = (0.2, 0.6)  # in units of the sky noise: sky-limited exposures
SEEING_RANGE = (1.5, 3.5)  # FWHM in pixels of a 64-pixel image
PNG_SOFTENING = 2.0  # asinh softening, in units of the image's noise
PNG_WHITE = 300.0  # the intensity shown as white, in units of the image's noise
CATALOG = "catalog.csv"


@dataclass(frozen=True)
class SynthSummary:
    """What write_synthetic_dataset wrote, enough to reproduce or describe the dataset."""

    out: Path
    classes: tuple[str, ...]
    per_class: int
    size: int
    bands: int
    seed: int
    format: str
    files: int
    catalog: Path | None = None


@dataclass(frozen=True)
class _Canvas:
    """Pixel coordinates relative to the image centre, padded so the PSF has room.

    ``psf_r2`` holds squared distances from pixel (0, 0) with wrap-around, the layout
    FFT convolution expects of a kernel.
    """

    x: np.ndarray
    y: np.ndarray
    psf_r2: np.ndarray
    size: int
    pad: int


@dataclass(frozen=True)
class _Component:
    """One light component: a unit-sum image, its share of the flux and its colour."""

    light: np.ndarray
    fraction: float
    colour: float


@dataclass(frozen=True)
class _Galaxy:
    """The components of one galaxy, an optional dust lane map with its optical depth, and
    the morphological parameters it was drawn with (PARAMETERS)."""

    components: list[_Component]
    params: dict[str, float]
    dust: np.ndarray | None = None
    tau: float = 0.0


#: What each image is drawn with, beyond its class: the targets of auxiliary-task
#: pretraining. All are unchanged by rotating or mirroring the image.
PARAMETERS: dict[str, str] = {
    "size": "half-light radius of the main component, as a fraction of the image size",
    "sersic_n": "Sérsic index of the spheroid, the bulge, or the mean of a merger's two",
    "axis_ratio": "apparent axis ratio of the main component (disk or spheroid)",
    "bulge_fraction": "share of the light in the spheroid or bulge (1 for a pure spheroid)",
    "arms": "number of spiral arms (0 for none)",
    "pitch": "pitch angle of the arms in degrees (0 for none)",
    "bar": "1 if the galaxy has a bar, else 0",
    "dust": "optical depth of the dust lane (0 for none)",
    "separation": "distance between a merger's nuclei in units of their size (0 otherwise)",
}


def _params(**given: float) -> dict[str, float]:
    """Every parameter, those not given at their 'absent' value."""
    absent = {"bulge_fraction": 1.0, "sersic_n": 1.0, "axis_ratio": 1.0}
    return {name: float(given.get(name, absent.get(name, 0.0))) for name in PARAMETERS}


def render_galaxy(
    kind: str, rng: np.random.Generator, size: int = 64, bands: int = 3
) -> np.ndarray:
    """One noisy galaxy image, float32 flux, shape (size, size, bands).

    The flux is in electrons after sky subtraction, so the background averages zero and
    carries real noise; all randomness comes from ``rng``, so a seeded generator gives
    the same image every time.
    """
    return render_galaxy_with_parameters(kind, rng, size, bands)[0]


def render_galaxy_with_parameters(
    kind: str, rng: np.random.Generator, size: int = 64, bands: int = 3
) -> tuple[np.ndarray, dict[str, float]]:
    """``render_galaxy``'s image, the PARAMETERS it was drawn with, and what was observed:
    ``flux`` (electrons in the frame, mean over bands) and ``snr`` (its matched-filter
    signal-to-noise)."""
    check_class(kind)
    size = check_range("size", size, SIZE_RANGE)
    bands = check_range("bands", bands, BANDS_RANGE)
    canvas = _make_canvas(size)
    galaxy = _RECIPES[kind](rng, canvas)
    x_b = _band_positions(bands)
    image, flux, snr = _observe(_band_images(galaxy, rng, x_b), rng, canvas, x_b)
    pixels = np.ascontiguousarray(np.moveaxis(image, 0, -1), dtype=np.float32)
    return pixels, {**galaxy.params, "flux": flux, "snr": snr}


def write_synthetic_dataset(
    out: str | Path,
    classes: Sequence[str] = DEFAULT_CLASSES,
    per_class: int = 100,
    size: int = 64,
    bands: int = 3,
    seed: int = 0,
    fmt: str = "png",
    *,
    catalog: bool = False,
    progress: bool = False,
) -> SynthSummary:
    """Write out/<class>/<class>_<index:05d>.<png|fits> and return counts.

    With ``catalog``, also out/catalog.csv: every image's path and class, the parameters
    it was drawn with, its flux and signal-to-noise, and simulated volunteer votes
    (``zoo.data.synth_catalog``); it is a catalog ``zoo finetune`` reads too.

    Image ``index`` of a class is drawn from a generator seeded by (seed, class name,
    index), so any file can be regenerated alone and adding classes or images leaves the
    others unchanged. Every file is written under a temporary name and renamed, so an
    interrupted run never leaves a half-written image behind.
    """
    config = SynthConfig(tuple(classes), per_class, size, bands, seed, fmt)
    encode = _encode_png if config.fmt == "png" else _encode_fits
    root = Path(out)
    rows = []
    with Progress(
        "Rendering galaxies", len(config.classes) * config.per_class, enabled=progress
    ) as bar:
        for kind in config.classes:
            for index in range(config.per_class):
                image, params = render_galaxy_with_parameters(
                    kind, _image_rng(config.seed, kind, index), config.size, config.bands
                )
                name = f"{kind}/{kind}_{index:05d}.{config.fmt}"
                write_bytes(root / name, encode(image, kind, config.seed))
                if catalog:
                    rows.append(_catalog_row(name, kind, params, config.seed, index))
                bar.update()
    if catalog:
        from zoo.data.synth_catalog import catalog_text

        write_text(root / CATALOG, catalog_text(rows, list(PARAMETERS)))
    return SynthSummary(
        root,
        config.classes,
        config.per_class,
        config.size,
        config.bands,
        config.seed,
        config.fmt,
        len(config.classes) * config.per_class,
        root / CATALOG if catalog else None,
    )


def _catalog_row(
    name: str, kind: str, params: dict[str, float], seed: int, index: int
) -> dict[str, object]:
    """One catalog row; the votes come from a generator of their own, so the images are
    the same with or without a catalog."""
    from zoo.data.synth_catalog import TRUE_PREFIX, answer_probabilities, flags, simulate_votes

    rng = np.random.default_rng([seed, zlib.crc32(kind.encode()), index, 1])
    answers = answer_probabilities(kind, params, rng)
    truths = {TRUE_PREFIX + question: p for question, p in answers.items()}
    return {
        "path": name,
        "label": kind,
        **params,
        **flags(params),
        **simulate_votes(answers, rng),
        **truths,
    }


def sersic_b(n: float) -> float:
    """b_n such that r_e encloses half the light (Ciotti & Bertin 1999, eq. 18)."""
    return (
        2 * n
        - 1 / 3
        + 4 / (405 * n)
        + 46 / (25515 * n**2)
        + 131 / (1148175 * n**3)
        - 2194697 / (30690717750 * n**4)
    )


def asinh_to_uint8(
    image: np.ndarray, softening: float = PNG_SOFTENING, white: float = PNG_WHITE
) -> np.ndarray:
    """An 8-bit rendering of flux that keeps faint structure and colours (Lupton et al. 2004).

    The flux is measured in units of the image's robust noise, so the stretch does not
    depend on the flux units; all bands are scaled by asinh of their mean intensity, so
    colours are preserved, and saturated pixels are scaled down as a whole, not clipped
    band by band. ``softening`` and ``white`` are in units of the noise.
    """
    noise = float(np.median([_robust_noise(image[..., b]) for b in range(image.shape[-1])]))
    x = image / max(noise, 1e-12)
    intensity = x.mean(axis=-1, keepdims=True)
    positive = intensity > 0
    stretch = np.arcsinh(intensity / softening) / np.arcsinh(white / softening)
    scaled = x * np.where(positive, stretch / np.where(positive, intensity, 1.0), 0.0)
    scaled /= np.maximum(scaled.max(axis=-1, keepdims=True), 1.0)
    return np.round(np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8)


def _image_rng(seed: int, kind: str, index: int) -> np.random.Generator:
    """The generator for one image, from (seed, class name, index) and nothing else."""
    return np.random.default_rng([seed, zlib.crc32(kind.encode()), index])


# --- geometry and profiles ------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _make_canvas(size: int) -> _Canvas:
    """A canvas an eighth of the image wider on each side, centred on the image centre.

    The padding lets light from just outside the frame be blurred into it and keeps the
    FFT's wrap-around away from the image. float32 is precise enough for light profiles
    and makes numpy's transcendental functions several times faster.
    """
    pad = max(8, size // 8)
    n = size + 2 * pad
    axis = np.arange(n, dtype=np.float32) - np.float32(pad + (size - 1) / 2)
    x, y = np.meshgrid(axis, axis)
    wrapped = np.fft.fftfreq(n, 1 / n).astype(np.float32)
    psf_r2 = wrapped[None, :] ** 2 + wrapped[:, None] ** 2
    for array in (x, y, psf_r2):
        array.flags.writeable = False
    return _Canvas(x, y, psf_r2, size, pad)


def _frame(canvas: _Canvas, centre: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates along (u) and across (v) a major axis at ``angle`` through ``centre``."""
    dx, dy = canvas.x - float(centre[0]), canvas.y - float(centre[1])
    cos, sin = math.cos(angle), math.sin(angle)
    return dx * cos + dy * sin, -dx * sin + dy * cos


def _unit(light: np.ndarray) -> np.ndarray:
    """Scale to unit sum, so a component's flux is set by its fraction alone."""
    return light / light.sum()


def _sersic(u: np.ndarray, v: np.ndarray, r_e: float, n: float, q: float) -> np.ndarray:
    """A unit-flux Sérsic profile with half-light radius r_e along the major axis.

    The radius is softened by half a pixel, standing in for integrating the cusp of
    high-n profiles over the central pixel instead of sampling it at one point.
    """
    r = np.sqrt(u * u + (v / q) ** 2 + 0.25)
    return _unit(np.exp(-sersic_b(n) * ((r / r_e) ** (1 / n) - 1)))


def _ferrers(u: np.ndarray, v: np.ndarray, a: float, b: float) -> np.ndarray:
    """A unit-flux Ferrers bar with semi-axes a and b: flat, then falling to zero at m=1."""
    m2 = (u / a) ** 2 + (v / b) ** 2
    return _unit(np.clip(1 - m2, 0.0, None) ** 2 + 1e-12)


def _inclined_axis_ratio(cos_i: float, q0: float) -> float:
    """The apparent axis ratio of a disk of thickness q0 at inclination i (Hubble 1926)."""
    return math.sqrt(cos_i**2 + q0**2 * (1 - cos_i**2))


def _arms(
    u: np.ndarray,
    v: np.ndarray,
    q: float,
    scale_length: float,
    arms: int,
    pitch_deg: float,
    start_radius: float,
    start_angle: float,
    chirality: int,
    sharpness: float,
) -> np.ndarray:
    """Unit-flux logarithmic spiral arms riding on an exponential disk, in the disk plane.

    The arm ridges are at theta = start_angle + chirality ln(r / start_radius) / tan(pitch)
    + 2 pi k / arms; the light fades inside start_radius, so arms begin there.
    """
    ud, vd = u, v / q
    r = np.sqrt(ud * ud + vd * vd + 0.25)
    theta = np.arctan2(vd, ud)
    winding = chirality * np.log(r / start_radius) / math.tan(math.radians(pitch_deg))
    ridge = (0.5 * (1 + np.cos(arms * (theta - start_angle - winding)))) ** sharpness
    inner = 1 / (1 + (start_radius / r) ** 4)
    return _unit(np.exp(-r / scale_length) * ridge * inner)


def _arc(
    canvas: _Canvas,
    start: np.ndarray,
    heading: float,
    turn: int,
    radius: float,
    span: float,
    width: float,
) -> np.ndarray:
    """A unit-flux tidal tail: a Gaussian tube along a circular arc that fades to its tip.

    The arc leaves ``start`` in direction ``heading`` and bends left (turn=+1) or right
    (turn=-1) through ``span`` radians on a circle of ``radius``.
    """
    normal = heading + turn * math.pi / 2
    centre = start + radius * np.array([math.cos(normal), math.sin(normal)])
    dx, dy = canvas.x - float(centre[0]), canvas.y - float(centre[1])
    rho = np.hypot(dx, dy)
    start_angle = normal + math.pi
    along = np.mod(turn * (np.arctan2(dy, dx) - start_angle), 2 * math.pi)
    fade = np.clip(1 - along / span, 0.0, None) ** 2
    return _unit(np.exp(-0.5 * ((rho - radius) / width) ** 2) * fade + 1e-12)


def _bridge(canvas: _Canvas, a: np.ndarray, b: np.ndarray, width: float) -> np.ndarray:
    """A unit-flux Gaussian tube along the segment from a to b: a tidal bridge."""
    px, py = canvas.x - float(a[0]), canvas.y - float(a[1])
    sx, sy = float(b[0] - a[0]), float(b[1] - a[1])
    t = np.clip((px * sx + py * sy) / (sx * sx + sy * sy), 0.0, 1.0)
    dist2 = (px - t * sx) ** 2 + (py - t * sy) ** 2
    return _unit(np.exp(-0.5 * dist2 / width**2))


# --- the classes ----------------------------------------------------------------------


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """A draw uniform in log, for scale quantities that span factors rather than offsets."""
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _placement(rng: np.random.Generator, canvas: _Canvas) -> tuple[np.ndarray, float]:
    """A small random centre offset and a random position angle."""
    centre = rng.uniform(-0.05, 0.05, size=2) * canvas.size
    return centre, float(rng.uniform(0, math.pi))


def _smooth(
    rng: np.random.Generator,
    canvas: _Canvas,
    n_range: tuple[float, float],
    q_range: tuple[float, float],
) -> _Galaxy:
    """A red spheroid with a Sérsic index and axis ratio from the given ranges."""
    centre, angle = _placement(rng, canvas)
    u, v = _frame(canvas, centre, angle)
    r_e = canvas.size * _log_uniform(rng, 0.06, 0.15)
    n, q = rng.uniform(*n_range), rng.uniform(*q_range)
    light = _sersic(u, v, r_e, n, q)
    params = _params(size=r_e / canvas.size, sersic_n=n, axis_ratio=q)
    return _Galaxy([_Component(light, 1.0, rng.uniform(0.35, 0.6))], params)


def _smooth_round(rng: np.random.Generator, canvas: _Canvas) -> _Galaxy:
    """An elliptical seen nearly round."""
    return _smooth(rng, canvas, (3.0, 5.0), (0.75, 1.0))


def _smooth_cigar(rng: np.random.Generator, canvas: _Canvas) -> _Galaxy:
    """An elongated spheroid."""
    return _smooth(rng, canvas, (2.5, 4.5), (0.3, 0.6))


def _edge_on(rng: np.random.Generator, canvas: _Canvas) -> _Galaxy:
    """A thin disk within a few degrees of edge-on, a small bulge, and often a dust lane."""
    centre, angle = _placement(rng, canvas)
    u, v = _frame(canvas, centre, angle)
    r_e = canvas.size * _log_uniform(rng, 0.08, 0.17)
    q = _inclined_axis_ratio(math.cos(math.radians(rng.uniform(86, 90))), rng.uniform(0.08, 0.18))
    bulge_fraction = rng.uniform(0.05, 0.2)
    bulge_size, bulge_n = r_e * rng.uniform(0.15, 0.3), rng.uniform(1.5, 3.0)
    bulge = _sersic(u, v, bulge_size, bulge_n, rng.uniform(0.6, 0.9))
    disk = _sersic(u, v, r_e, 1.0, q)
    components = [
        _Component(disk, 1 - bulge_fraction, rng.uniform(-0.1, 0.15)),
        _Component(bulge, bulge_fraction, rng.uniform(0.35, 0.6)),
    ]
    shape = {"size": r_e / canvas.size, "sersic_n": bulge_n, "axis_ratio": q}
    if rng.uniform() < 0.6:
        thickness = q * r_e / 1.678
        width = max(0.3, thickness * rng.uniform(0.3, 0.6))
        offset = thickness * rng.uniform(-0.4, 0.4)
        lane = np.exp(-0.5 * ((v - offset) / width) ** 2 - np.abs(u) / (2 * r_e))
        tau = float(rng.uniform(0.5, 1.5))
        params = _params(**shape, bulge_fraction=bulge_fraction, dust=tau)
        return _Galaxy(components, params, lane, tau)
    return _Galaxy(components, _params(**shape, bulge_fraction=bulge_fraction))


def _spiral(
    rng: np.random.Generator,
    canvas: _Canvas,
    arms: int,
    pitch_range: tuple[float, float],
    bulge_range: tuple[float, float],
    bar: bool = False,
) -> _Galaxy:
    """Bulge, exponential disk and blue logarithmic arms, optionally with a bar."""
    centre, angle = _placement(rng, canvas)
    u, v = _frame(canvas, centre, angle)
    r_e = canvas.size * _log_uniform(rng, 0.08, 0.17)
    h = r_e / 1.678
    q = _inclined_axis_ratio(rng.uniform(0.45, 1.0), rng.uniform(0.1, 0.2))
    bulge_fraction = rng.uniform(*bulge_range)
    bar_fraction = rng.uniform(0.12, 0.25) if bar else 0.0
    arm_fraction = (1 - bulge_fraction - bar_fraction) * rng.uniform(0.3, 0.5)
    bulge_q = rng.uniform(max(q, 0.7), 1.0)
    bulge_size, bulge_n = r_e * rng.uniform(0.12, 0.3), rng.uniform(1.5, 4.0)
    bulge = _sersic(u, v, bulge_size, bulge_n, bulge_q)
    components = [_Component(bulge, bulge_fraction, rng.uniform(0.35, 0.6))]
    start_radius, start_angle = h * rng.uniform(0.8, 1.3), rng.uniform(0, 2 * math.pi)
    if bar:
        start_radius = h * rng.uniform(0.9, 1.5)
        cos, sin = math.cos(start_angle), math.sin(start_angle)
        ud, vd = u, v / q
        bar_light = _ferrers(
            ud * cos + vd * sin,
            -ud * sin + vd * cos,
            start_radius,
            start_radius * rng.uniform(0.2, 0.35),
        )
        components.append(_Component(bar_light, bar_fraction, rng.uniform(0.25, 0.5)))
    pitch = rng.uniform(*pitch_range)
    chirality = int(rng.choice([-1, 1]))
    spiral = _arms(
        u, v, q, h, arms, pitch, start_radius, start_angle, chirality, rng.uniform(2.0, 4.0)
    )
    disk = _sersic(u, v, r_e, 1.0, q)
    components.append(_Component(spiral, arm_fraction, rng.uniform(-0.5, -0.25)))
    disk_fraction = 1 - bulge_fraction - bar_fraction - arm_fraction
    components.append(_Component(disk, disk_fraction, rng.uniform(-0.05, 0.15)))
    params = _params(
        size=r_e / canvas.size,
        sersic_n=bulge_n,
        axis_ratio=q,
        bulge_fraction=bulge_fraction,
        arms=arms,
        pitch=pitch,
        bar=float(bar),
    )
    return _Galaxy(components, params)


def _barred_spiral(rng: np.random.Generator, canvas: _Canvas) -> _Galaxy:
    """A barred spiral whose two arms begin at the ends of the bar."""
    return _spiral(rng, canvas, 2, (12.0, 25.0), (0.05, 0.25), bar=True)


def _tight_spiral(rng: np.random.Generator, canvas: _Canvas) -> _Galaxy:
    """An early-type spiral: tightly wound arms and a fair bulge."""
    return _spiral(rng, canvas, int(rng.choice([2, 3])), (8.0, 15.0), (0.1, 0.35))


def _loose_spiral(rng: np.random.Generator, canvas: _Canvas) -> _Galaxy:
    """A late-type spiral: open arms and a small bulge."""
    return _spiral(rng, canvas, 2, (25.0, 40.0), (0.03, 0.2))


def _merger(rng: np.random.Generator, canvas: _Canvas) -> _Galaxy:
    """Two galaxies of comparable flux, a tidal tail from one or both, sometimes a bridge."""
    centre, _ = _placement(rng, canvas)
    r_e = canvas.size * _log_uniform(rng, 0.06, 0.12)
    separation = r_e * rng.uniform(0.8, 2.4)
    direction = rng.uniform(0, 2 * math.pi)
    offset = 0.5 * separation * np.array([math.cos(direction), math.sin(direction)])
    nuclei = [centre + offset, centre - offset]
    tail_fraction = rng.uniform(0.08, 0.18)
    bridge_fraction = rng.uniform(0.03, 0.08) if rng.uniform() < 0.5 else 0.0
    primary = rng.uniform(0.5, 0.75)
    stellar = 1 - tail_fraction - bridge_fraction
    components, indices, ratios = [], [], []
    for nucleus, share in zip(nuclei, (primary, 1 - primary), strict=True):
        u, v = _frame(canvas, nucleus, rng.uniform(0, math.pi))
        size = r_e * rng.uniform(0.6, 1.0)
        indices.append(rng.uniform(1.0, 4.0))
        ratios.append(rng.uniform(0.4, 1.0))
        light = _sersic(u, v, size, indices[-1], ratios[-1])
        components.append(_Component(light, stellar * share, rng.uniform(0.0, 0.5)))
    turn = int(rng.choice([-1, 1]))
    both_tails = rng.uniform() < 0.5
    for k, nucleus in enumerate(nuclei[: 2 if both_tails else 1]):
        heading = direction + k * math.pi + turn * rng.uniform(0.3, 1.0)
        tail = _arc(
            canvas,
            nucleus,
            heading,
            turn,
            separation * rng.uniform(0.8, 1.6),
            rng.uniform(1.0, 2.4),
            r_e * rng.uniform(0.2, 0.35),
        )
        share = tail_fraction / (2 if both_tails else 1)
        components.append(_Component(tail, share, rng.uniform(-0.35, 0.0)))
    if bridge_fraction:
        bridge = _bridge(canvas, nuclei[0], nuclei[1], r_e * rng.uniform(0.2, 0.35))
        components.append(_Component(bridge, bridge_fraction, rng.uniform(-0.3, 0.0)))
    params = _params(
        size=r_e / canvas.size,
        sersic_n=sum(indices) / 2,
        axis_ratio=sum(ratios) / 2,
        separation=separation / r_e,
    )
    return _Galaxy(components, params)


_RECIPES: dict[str, Callable[[np.random.Generator, _Canvas], _Galaxy]] = {
    "smooth_round": _smooth_round,
    "smooth_cigar": _smooth_cigar,
    "edge_on": _edge_on,
    "barred_spiral": _barred_spiral,
    "tight_spiral": _tight_spiral,
    "loose_spiral": _loose_spiral,
    "merger": _merger,
}


# --- observing ------------------------------------------------------------------------


def _band_positions(bands: int) -> np.ndarray:
    """x_b for each band: +1 for the reddest (band 0) to -1 for the bluest, 0 if only one."""
    return np.linspace(1.0, -1.0, bands) if bands > 1 else np.zeros(1)


def _band_images(galaxy: _Galaxy, rng: np.random.Generator, x_b: np.ndarray) -> np.ndarray:
    """The noiseless light in electrons per band, shape (bands, canvas, canvas).

    A component's colour slope s gives it flux ~ exp(s x_b), normalised to a mean of one
    over the bands, so the total flux (mean over bands) is the drawn one before dust.
    """
    flux = _log_uniform(rng, *FLUX_RANGE)
    seds = np.array([np.exp(c.colour * x_b) for c in galaxy.components])
    seds /= seds.mean(axis=1, keepdims=True)
    weights = flux * np.array([c.fraction for c in galaxy.components])[:, None] * seds
    stack = np.stack([c.light for c in galaxy.components])
    light = np.einsum("cb,cij->bij", weights.astype(np.float32), stack)
    if galaxy.dust is not None:
        tau = (galaxy.tau * np.exp(-0.25 * x_b)).astype(np.float32)
        light *= np.exp(-tau[:, None, None] * galaxy.dust[None])
    return light


def _psf_kernels(rng: np.random.Generator, canvas: _Canvas, x_b: np.ndarray) -> np.ndarray:
    """Unit-sum PSFs per band, centred on pixel (0, 0) for FFT convolution.

    Moffat profiles (beta 2.5-4.5) model atmospheric seeing with its extended wings, and
    a Gaussian now and then the core of a diffraction- or optics-limited PSF; the FWHM
    shrinks slowly to the red, as seeing does (~ wavelength^-1/5).
    """
    r2 = canvas.psf_r2
    fwhm = rng.uniform(*SEEING_RANGE) * canvas.size / 64 * np.exp(-0.05 * x_b)
    moffat_beta = rng.uniform(2.5, 4.5) if rng.uniform() < 0.75 else None
    kernels = []
    for width in map(float, fwhm):
        if moffat_beta is None:
            sigma = width / (2 * math.sqrt(2 * math.log(2)))
            kernel = np.exp(-0.5 * r2 / sigma**2)
        else:
            alpha = width / (2 * math.sqrt(2 ** (1 / moffat_beta) - 1))
            kernel = (1 + r2 / alpha**2) ** -moffat_beta
        kernels.append(kernel / kernel.sum())
    return np.stack(kernels)


def _observe(
    light: np.ndarray, rng: np.random.Generator, canvas: _Canvas, x_b: np.ndarray
) -> tuple[np.ndarray, float, float]:
    """Blur, crop, add sky, count photons with read noise, and subtract the sky again;
    also the flux in the frame and the matched-filter signal-to-noise over all bands.

    The sky level and read noise are quoted for 64-pixel images; at other sizes the sky
    per pixel scales with the pixel area and the read noise with the sky noise, so a size
    is the same exposure sampled more or less finely and the galaxy's total
    signal-to-noise does not depend on it. The sky subtracted is its mean level, as a
    survey pipeline measures it over areas far larger than a cutout; estimating it from
    the cutout's own edges would eat into large galaxies that fill the frame.
    """
    kernels = _psf_kernels(rng, canvas, x_b)
    blurred = np.fft.irfft2(np.fft.rfft2(light) * np.fft.rfft2(kernels), s=light.shape[-2:])
    p, s = canvas.pad, canvas.size
    signal = np.clip(blurred[:, p : p + s, p : p + s], 0.0, None)
    sky_level = _log_uniform(rng, *SKY_RANGE) * (64 / canvas.size) ** 2
    sky = sky_level * np.exp(0.3 * x_b)[:, None, None]
    read_noise = rng.uniform(*READ_NOISE_RANGE) * math.sqrt(sky_level)
    counts = rng.poisson(signal + sky) + rng.normal(0.0, read_noise, signal.shape)
    flux = float(signal.sum(axis=(1, 2)).mean())
    snr = float(np.sqrt((signal**2 / (signal + sky + read_noise**2)).sum()))
    return counts - sky, flux, snr


def _robust_noise(band: np.ndarray) -> float:
    """The background noise from the median absolute deviation, which ignores the galaxy."""
    return 1.4826 * float(np.median(np.abs(band - np.median(band))))


# --- writing --------------------------------------------------------------------------


def _encode_png(image: np.ndarray, kind: str, seed: int) -> bytes:
    """PNG bytes: grayscale for one band, RGB for three (kind and seed live in the path)."""
    from PIL import Image

    pixels = asinh_to_uint8(image)
    mode = "L" if pixels.shape[-1] == 1 else "RGB"
    buffer = io.BytesIO()
    Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _encode_fits(image: np.ndarray, kind: str, seed: int) -> bytes:
    """FITS bytes: a float32 (bands, size, size) cube, so a reader takes band i as data[i]."""
    from astropy.io import fits

    hdu = fits.PrimaryHDU(np.ascontiguousarray(np.moveaxis(image, -1, 0), dtype=np.float32))
    hdu.header["OBJECT"] = (kind, "synthetic galaxy class")
    hdu.header["BANDS"] = (image.shape[-1], "bands, reddest first")
    hdu.header["ZOOSEED"] = (seed, "zoo.data.synth dataset seed")
    hdu.header["BUNIT"] = ("electron", "sky-subtracted counts")
    buffer = io.BytesIO()
    hdu.writeto(buffer)
    return buffer.getvalue()
