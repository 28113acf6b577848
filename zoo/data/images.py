"""Reading one image file into a float32 (height, width, bands) array.

8-bit and 16-bit images (PNG, JPEG, TIFF) keep their pixel values (0-255 or 0-65535);
FITS files keep their flux. Band selection works on FITS cubes (bands on the first
axis), multi-extension FITS (one band per image extension, selectable by EXTNAME or
FILTER) and multi-page TIFFs. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ImageError

PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz")

Band = int | str


@dataclass(frozen=True)
class ImageGeometry:
    """How images are read for a backbone: resized to ``size``, with its ``channels``,
    from the ``bands`` chosen in each file (all of them when None)."""

    size: tuple[int, int]
    channels: int
    bands: tuple[Band, ...] | None = None


def is_image_file(path: str | Path) -> bool:
    """Whether zoo knows how to read this file, judged by its name."""
    name = Path(path).name.lower()
    return name.endswith(PIL_SUFFIXES + FITS_SUFFIXES)


def read_image(
    path: str | Path, bands: Sequence[Band] | None = None, *, max_pixels: int | None = None
) -> np.ndarray:
    """The image at ``path`` as float32 (height, width, bands), non-finite values set to 0.

    An image of more than ``max_pixels`` pixels is refused before it is decoded, and so
    is one without a single finite value.
    """
    name = Path(path).name.lower()
    if name.endswith(FITS_SUFFIXES):
        planes, names = _fits_planes(path, max_pixels)
    elif name.endswith(PIL_SUFFIXES):
        planes, names = _pil_planes(path, max_pixels)
    else:
        raise ImageError(f"{path}: not an image zoo can read (PNG, JPEG, TIFF or FITS)")
    if bands:
        planes = [planes[_band_index(path, band, names, len(planes))] for band in bands]
    shapes = {p.shape for p in planes}
    if len(shapes) != 1:
        raise ImageError(f"{path}: its bands have different shapes {sorted(shapes)}")
    image = np.stack(planes, axis=-1).astype("float32")
    if image.size and not np.isfinite(image).any():
        raise ImageError(f"{path}: no pixel holds a finite value (all NaN or infinite)")
    return np.nan_to_num(image, nan=0.0, posinf=0.0, neginf=0.0)


def channels_fit(have: int, want: int) -> bool:
    """Whether an image of ``have`` bands can feed a backbone of ``want`` channels: the same,
    grey (repeated to colour), or anything averaged to grey (``zoo.data.conform``)."""
    return have in (want, 1) or want == 1


def _pil_planes(path: str | Path, max_pixels: int | None) -> tuple[list[np.ndarray], list[str]]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            _check_pixels(path, *image.size, max_pixels)
            frames = []
            for index in range(getattr(image, "n_frames", 1)):
                image.seek(index)
                frames.append(_pil_frame(image))
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: too large to decode safely ({exc})") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{path}: unreadable image ({exc})") from exc
    if len(frames) == 1:
        array = frames[0]
        return [array[..., i] for i in range(array.shape[-1])], []
    return [frame.mean(axis=-1) for frame in frames], []  # one band per TIFF page


def _pil_frame(image: object) -> np.ndarray:
    from PIL import Image

    assert isinstance(image, Image.Image)
    if image.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGB")
    elif image.mode in ("RGBA", "LA"):
        image = image.convert(image.mode[:-1])  # the alpha channel is not a band
    image.load()
    array = np.asarray(image, dtype="float32")
    return array[..., None] if array.ndim == 2 else array


def _check_pixels(path: str | Path, width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise ImageError(
            f"{path}: {width}x{height} pixels is more than the limit of {max_pixels:,} "
            "(--max-pixels)"
        )


def _fits_planes(path: str | Path, max_pixels: int | None) -> tuple[list[np.ndarray], list[str]]:
    from astropy.io import fits
    from astropy.utils.exceptions import AstropyWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)  # a bad file is reported once, by zoo
            with fits.open(path, memmap=False) as hdus:
                for hdu in hdus:  # the header tells the size before any data is read
                    width, height = hdu.header.get("NAXIS1", 0), hdu.header.get("NAXIS2", 0)
                    _check_pixels(path, int(width), int(height), max_pixels)
                return _hdu_planes(path, hdus)
    except ImageError:
        raise
    except Exception as exc:  # astropy raises OSError, TypeError, VerifyError, ...
        raise ImageError(f"{path}: unreadable FITS file ({exc})") from exc


def _hdu_planes(path: str | Path, hdus: Any) -> tuple[list[np.ndarray], list[str]]:
    """Every 2-D image (and every plane of a cube) in the file, with its band name if any."""
    planes: list[np.ndarray] = []
    names: list[str] = []
    for hdu in hdus:
        data = getattr(hdu, "data", None)
        if data is None or not isinstance(data, np.ndarray) or data.ndim < 2:
            continue
        header = hdu.header
        label = str(header.get("EXTNAME") or header.get("FILTER") or header.get("BAND") or "")
        if data.ndim == 2:
            planes.append(np.asarray(data, dtype="float32"))
            names.append(label)
        elif data.ndim == 3:
            planes += [np.asarray(plane, dtype="float32") for plane in data]
            names += [f"{label}{i}" if label else "" for i in range(data.shape[0])]
        else:
            raise ImageError(f"{path}: HDU with {data.ndim} dimensions; expected images or cubes")
    if not planes:
        raise ImageError(f"{path}: no image data in any HDU")
    return planes, names


def _band_index(path: str | Path, band: Band, names: list[str], count: int) -> int:
    if isinstance(band, int) or str(band).isdigit():
        index = int(band)
        if not 0 <= index < count:
            raise ImageError(f"{path}: no band {index}; it has {count} (numbered from 0)")
        return index
    lowered = [n.lower() for n in names]
    if str(band).lower() in lowered:
        return lowered.index(str(band).lower())
    known = ", ".join(n for n in names if n) or "none named"
    raise ImageError(f"{path}: no band named '{band}' (bands: {known})")
