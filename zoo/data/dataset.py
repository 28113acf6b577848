"""A labelled image set: found on disk, checked file by file, split the same way everywhere.

Inputs are a folder per class, or a CSV catalog with ``path,label`` and an optional
``split`` column (paths relative to the catalog). Every file is read once up front: its
bytes are hashed (the feature cache and the run's record of the split use the hashes)
and decoded, so a corrupt file is skipped with a warning and counted, never a crash
mid-training. Splits come from a hash of each file's path relative to the data root, so
they are the same on every machine and do not move when files are added.
"""

from __future__ import annotations

import csv
import hashlib
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.data.images import Band, is_image_file, read_image
from zoo.errors import DataError, DataWarning, ImageError
from zoo.progress import Progress

SPLITS = ("train", "val", "test")
_SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


@dataclass(frozen=True)
class Sample:
    """One usable image: where it is, its class, its split and the hash of its bytes."""

    path: str
    relpath: str
    label: int
    split: str
    digest: str


@dataclass
class ImageSet:
    """The usable samples of a data set, its class names and what was skipped, and why."""

    root: str
    labels: tuple[str, ...]
    samples: list[Sample]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    channels: int = 0

    def split(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.split == name]

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per split and class."""
        table = {split: {label: 0 for label in self.labels} for split in SPLITS}
        for sample in self.samples:
            table[sample.split][self.labels[sample.label]] += 1
        return table

    def class_weights(self) -> dict[int, float]:
        """Balanced weights from the training split: n / (classes x count of the class)."""
        counts = Counter(s.label for s in self.split("train"))
        total = sum(counts.values())
        classes = len(self.labels)
        return {i: total / (classes * counts[i]) if counts[i] else 0.0 for i in range(classes)}

    def split_digest(self, name: str) -> str:
        """A hash of one split's membership and contents, recorded with every run."""
        lines = sorted(f"{s.relpath}\t{s.digest}\t{self.labels[s.label]}" for s in self.split(name))
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "labels": list(self.labels),
            "counts": self.counts(),
            "class_weights": {self.labels[i]: round(w, 4) for i, w in self.class_weights().items()},
            "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
            "split_digests": {name: self.split_digest(name) for name in SPLITS},
        }


def load_image_set(
    data: str | Path,
    *,
    val_split: float = 0.15,
    test_split: float = 0.15,
    bands: Sequence[Band] | None = None,
    labels: Sequence[str] | None = None,
    all_in: str | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> ImageSet:
    """Find, check and split the images of a class-folder tree or a CSV catalog.

    ``labels`` fixes the class list (evaluating a run on new data); ``all_in`` puts every
    image in one split instead of hashing (``zoo evaluate`` uses "test").
    """
    if not 0 <= val_split < 1 or not 0 <= test_split < 1 or val_split + test_split >= 1:
        raise DataError(
            f"--val-split {val_split} and --test-split {test_split} must leave room for training"
        )
    root, entries, skipped = _discover(Path(data).expanduser())
    names = tuple(labels) if labels else tuple(sorted({label for _, label, _ in entries}))
    unknown = sorted({label for _, label, _ in entries} - set(names))
    if unknown:
        raise DataError(
            f"{data}: classes {', '.join(unknown)} are not among the run's labels {', '.join(names)}"
        )
    if not entries:
        raise DataError(
            f"{data}: no images found (PNG, JPEG, TIFF or FITS, in a folder per class or a CSV catalog)"
        )
    if len(names) < 2 and labels is None:
        raise DataError(
            f"{data}: only one class ({', '.join(names)}); a classifier needs at least two"
        )
    checked = _check_files(root, entries, bands, workers, progress)
    samples: list[Sample] = []
    channel_counts: Counter[int] = Counter()
    for (relpath, label, split), result in zip(entries, checked, strict=True):
        if isinstance(result, str):
            skipped.append((relpath, result))
            continue
        digest, channels = result
        channel_counts[channels] += 1
        split = all_in or split or stable_split(relpath, val_split, test_split)
        samples.append(Sample(str(root / relpath), relpath, names.index(label), split, digest))
    image_set = ImageSet(str(root), names, samples, skipped, _common_channels(data, channel_counts))
    if skipped:
        warnings.warn(
            f"{data}: skipped {len(skipped)} file(s) that could not be used, e.g. "
            f"{skipped[0][0]} ({skipped[0][1]}); the run summary lists them all",
            DataWarning,
            stacklevel=2,
        )
    _check_classes(data, image_set, require_training=all_in is None)
    return image_set


def stable_split(relpath: str, val_split: float, test_split: float) -> str:
    """'train', 'val' or 'test' from a hash of the path: the same on every machine."""
    digest = hashlib.sha256(Path(relpath).as_posix().encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    if position < test_split:
        return "test"
    if position < test_split + val_split:
        return "val"
    return "train"


def _discover(data: Path) -> tuple[Path, list[tuple[str, str, str | None]], list[tuple[str, str]]]:
    if data.is_file() and data.suffix.lower() == ".csv":
        return _from_catalog(data)
    if data.is_dir():
        return _from_folders(data)
    raise DataError(f"{data} is neither a folder of class folders nor a .csv catalog")


def _from_folders(
    root: Path,
) -> tuple[Path, list[tuple[str, str, str | None]], list[tuple[str, str]]]:
    entries: list[tuple[str, str, str | None]] = []
    skipped: list[tuple[str, str]] = []
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for folder in classes:
        found = 0
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                if filename.startswith("."):
                    continue
                relpath = (Path(dirpath) / filename).relative_to(root).as_posix()
                if is_image_file(filename):
                    entries.append((relpath, folder.name, None))
                    found += 1
                else:
                    skipped.append((relpath, "not an image file (PNG, JPEG, TIFF or FITS)"))
        if not found:
            raise DataError(f"{root}: class folder '{folder.name}' holds no images")
    return root, entries, skipped


def _from_catalog(
    path: Path,
) -> tuple[Path, list[tuple[str, str, str | None]], list[tuple[str, str]]]:
    root = path.parent.resolve()
    entries: list[tuple[str, str, str | None]] = []
    skipped: list[tuple[str, str]] = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip().lower() for c in reader.fieldnames or []]
        if "path" not in columns or "label" not in columns:
            raise DataError(
                f"{path}: a catalog needs a header with 'path' and 'label' columns (got {columns})"
            )
        for line, row in enumerate(reader, start=2):
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            relpath, label = row.get("path", ""), row.get("label", "")
            if not relpath or not label:
                raise DataError(f"{path}, line {line}: 'path' and 'label' must both be filled in")
            split = row.get("split") or None
            if split is not None:
                if split.lower() not in _SPLIT_NAMES:
                    raise DataError(
                        f"{path}, line {line}: split '{split}' is not train, val or test"
                    )
                split = _SPLIT_NAMES[split.lower()]
            if not (root / relpath).is_file():
                skipped.append((relpath, "listed in the catalog but missing"))
                continue
            entries.append((Path(relpath).as_posix(), label, split))
    return root, entries, skipped


def _check_files(
    root: Path,
    entries: list[tuple[str, str, str | None]],
    bands: Sequence[Band] | None,
    workers: int | None,
    progress: bool,
) -> list[tuple[str, int] | str]:
    """Hash and decode every file; a failure becomes its reason, as a string."""

    def check(relpath: str) -> tuple[str, int] | str:
        path = root / relpath
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            image = read_image(path, bands)
        except ImageError as exc:
            return str(exc).removeprefix(f"{path}: ")
        except OSError as exc:
            return f"unreadable ({exc.strerror})"
        if image.ndim != 3 or min(image.shape) == 0:
            return f"empty image of shape {image.shape}"
        return digest, int(image.shape[-1])

    results = []
    threads = workers or min(8, (os.cpu_count() or 2) * 2)
    with (
        ThreadPoolExecutor(max_workers=threads) as pool,
        Progress("Checking files", len(entries), enabled=progress) as bar,
    ):
        for result in pool.map(check, [relpath for relpath, _, _ in entries]):
            results.append(result)
            bar.update()
    return results


def _common_channels(data: str | Path, counts: Counter[int]) -> int:
    if not counts:
        return 0
    if len(counts) > 1:
        warnings.warn(
            f"{data}: images have different numbers of bands {dict(counts)}; each is fitted to "
            "the backbone's channels (grey repeated, colour averaged)",
            DataWarning,
            stacklevel=3,
        )
    return counts.most_common(1)[0][0]


def _check_classes(data: str | Path, image_set: ImageSet, require_training: bool) -> None:
    present = Counter(s.label for s in image_set.samples)
    empty = [image_set.labels[i] for i in range(len(image_set.labels)) if not present[i]]
    if empty and require_training:
        raise DataError(f"{data}: no readable images in class(es) {', '.join(empty)}")
    if not require_training:
        return
    training = Counter(s.label for s in image_set.split("train"))
    missing = [image_set.labels[i] for i in range(len(image_set.labels)) if not training[i]]
    if missing:
        raise DataError(
            f"{data}: class(es) {', '.join(missing)} have no training images after the split; "
            "add images or lower --val-split/--test-split"
        )
    if not image_set.split("val"):
        raise DataError(f"{data}: the validation split is empty; add images or raise --val-split")
