"""The synthetic galaxy generator's settings: its classes, formats and ranges, checked.

Plain data with no numpy, so the command line offers the choices and defaults without
loading the renderer (``zoo.data.synth``).
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Sequence
from dataclasses import dataclass

from zoo.errors import ConfigError

CLASSES: dict[str, str] = {
    "smooth_round": "round Sersic spheroid (n 3-5, axis ratio 0.75-1), like an elliptical",
    "smooth_cigar": "elongated Sersic spheroid (axis ratio 0.3-0.6)",
    "edge_on": "thin exponential disk seen edge-on (axis ratio ~0.1-0.2), small bulge, often a dust lane",
    "barred_spiral": "disk, bulge and bar, with two arms starting at the bar ends",
    "tight_spiral": "disk and bulge with two or three tightly wound arms (pitch 8-15 degrees)",
    "loose_spiral": "disk and small bulge with two open arms (pitch 25-40 degrees)",
    "merger": "two galaxies of comparable flux, close or overlapping, with a tidal tail or bridge",
}
DEFAULT_CLASSES: tuple[str, ...] = ("smooth_round", "edge_on", "loose_spiral", "merger")
FORMATS: tuple[str, ...] = ("png", "fits")
SIZE_RANGE: tuple[int, int] = (16, 512)
BANDS_RANGE: tuple[int, int] = (1, 5)


@dataclass(frozen=True)
class SynthConfig:
    """What to generate; every field is checked, and the defaults are the CLI's."""

    classes: tuple[str, ...] = DEFAULT_CLASSES
    per_class: int = 100
    size: int = 64
    bands: int = 3
    seed: int = 0
    fmt: str = "png"

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", check_classes(self.classes))
        object.__setattr__(self, "per_class", check_range("per_class", self.per_class, (1, None)))
        object.__setattr__(self, "size", check_range("size", self.size, SIZE_RANGE))
        object.__setattr__(self, "bands", check_range("bands", self.bands, BANDS_RANGE))
        object.__setattr__(self, "seed", check_range("seed", self.seed, (0, None)))
        check_format(self.fmt, self.bands)


def check_class(kind: str) -> None:
    """Unknown class names fail with the nearest known name, since they are usually typos."""
    if kind in CLASSES:
        return
    near = difflib.get_close_matches(str(kind), list(CLASSES), n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise ConfigError(f"unknown galaxy class {kind!r}{hint}; known classes: {', '.join(CLASSES)}")


def check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    """The requested class names, checked, without repeats, in the order given."""
    if isinstance(classes, str):
        classes = (classes,)
    names = tuple(dict.fromkeys(classes))
    if not names:
        raise ConfigError(f"no galaxy classes given; choose from {', '.join(CLASSES)}")
    for kind in names:
        check_class(kind)
    return names


def check_range(name: str, value: int, bounds: tuple[int, int | None]) -> int:
    """An integer argument within bounds (upper bound None: unbounded), or a ConfigError."""
    low, high = bounds
    allowed = f"{low}..{high}" if high is not None else f">= {low}"
    try:
        number = operator.index(value)
    except TypeError:
        raise ConfigError(f"{name} must be an integer in {allowed}, got {value!r}") from None
    if number < low or (high is not None and number > high):
        raise ConfigError(f"{name} {value!r} is out of range; allowed: {allowed}")
    return number


def check_format(fmt: str, bands: int) -> None:
    """Only png and fits are written, and PNG holds only one or three bands."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown image format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if fmt == "png" and bands not in (1, 3):
        raise ConfigError(
            f"png holds 1 or 3 bands, not {bands}; use fmt='fits' for {bands}-band images"
        )
