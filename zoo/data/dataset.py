"""A labelled image set: found on disk, checked file by file, split the same way everywhere.

Inputs are a folder per class, or a CSV catalog with ``path,label`` and an optional
``split`` column (paths relative to the catalog); for the tasks other than
classification, a catalog with the target columns (``zoo.data.targets``). Every file is
read once up front: its bytes are hashed (the feature cache and the run's record of the split use the hashes)
and decoded, so a corrupt file is skipped with a warning and counted, never a crash
mid-training. Splits come from a hash of each file's path relative to the data root, so
they are the same on every machine and do not move when files are added.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from zoo.data import MAX_PIXELS
from zoo.data.images import FITS_SUFFIXES, Band, channels_fit, is_image_file, read_image
from zoo.data.targets import TargetColumns, choose_columns, row_targets
from zoo.errors import DataError, DataWarning, ImageError
from zoo.progress import Progress

SPLITS = ("train", "val", "test")
NOT_UTF8 = "its name is not valid UTF-8; rename it"
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
    """One usable image: where it is, its class, its split and the hash of its bytes.

    ``target`` holds a regression, multi-label or vote task's values (``label`` is then 0).
    """

    path: str
    relpath: str
    label: int
    split: str
    digest: str
    target: tuple[float, ...] = ()


def target_array(samples: Sequence[Sample]) -> Any:
    """What a model learns from: class indices (int32), or the targets (float32 rows)."""
    import numpy as np

    if samples and samples[0].target:
        return np.array([s.target for s in samples], dtype="float32")
    return np.array([s.label for s in samples], dtype="int32")


class _Found(NamedTuple):
    """What a folder or catalog lists: files with their label and split, what was skipped,
    and a catalog's targets per file."""

    root: Path
    entries: list[tuple[str, str, str | None]]
    skipped: list[tuple[str, str]]
    targets: TargetColumns | None = None
    values: dict[str, tuple[float, ...]] | None = None


@dataclass
class ImageSet:
    """The usable samples of a data set, its class names and what was skipped, and why.

    For a task with catalog targets, ``labels`` are the target columns (the model's
    outputs) and ``targets`` says which task they are for.
    """

    root: str
    labels: tuple[str, ...]
    samples: list[Sample]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    channels: int = 0
    targets: TargetColumns | None = None

    @property
    def task(self) -> str:
        return self.targets.task if self.targets else "classify"

    def split(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.split == name]

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per split and class (per split alone for catalog targets)."""
        if self.targets:
            return {split: {"images": len(self.split(split))} for split in SPLITS}
        table = {split: {label: 0 for label in self.labels} for split in SPLITS}
        for sample in self.samples:
            table[sample.split][self.labels[sample.label]] += 1
        return table

    def class_weights(self) -> dict[int, float] | None:
        """Balanced weights from the training split: n / (classes x count of the class);
        None for catalog targets, which have no classes to balance."""
        if self.targets:
            return None
        counts = Counter(s.label for s in self.split("train"))
        total = sum(counts.values())
        classes = len(self.labels)
        return {i: total / (classes * counts[i]) if counts[i] else 0.0 for i in range(classes)}

    def split_digest(self, name: str) -> str:
        """A hash of one split's membership and contents, recorded with every run."""
        lines = sorted(
            f"{s.relpath}\t{s.digest}\t{self.labels[s.label]}{_text(s.target)}"
            for s in self.split(name)
        )
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        weights = self.class_weights() or {}
        return {
            "root": self.root,
            "task": self.task,
            "labels": list(self.labels),
            "counts": self.counts(),
            "class_weights": {self.labels[i]: round(w, 4) for i, w in weights.items()},
            "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
            "split_digests": {name: self.split_digest(name) for name in SPLITS},
            "formats": dict(sorted(Counter(_format(s.relpath) for s in self.samples).items())),
        }


def load_image_set(
    data: str | Path,
    *,
    val_split: float = 0.15,
    test_split: float = 0.15,
    bands: Sequence[Band] | None = None,
    labels: Sequence[str] | None = None,
    all_in: str | None = None,
    channels: int | None = None,
    max_pixels: int = MAX_PIXELS,
    workers: int | None = None,
    progress: bool = False,
    task: str = "classify",
    targets: Sequence[str] = (),
) -> ImageSet:
    """Find, check and split the images of a class-folder tree or a CSV catalog.

    A ``task`` other than "classify" reads its ``targets`` columns (or the task's
    default ones) from a catalog (``zoo.data.targets``); rows without a usable target
    are skipped with their reason, as unreadable files are.

    ``labels`` fixes the class list (evaluating a run on new data); ``all_in`` puts every
    image in one split instead of hashing (``zoo evaluate`` uses "test"). Every file is
    read here, so that nothing about one file can stop training later: a file that
    cannot be decoded, is larger than ``max_pixels``, holds no finite pixel, has a name
    that is not UTF-8, or has a number of bands that cannot be fitted to ``channels``
    (default: the most common number in the set) is skipped, with its reason.
    """
    if not 0 <= val_split < 1 or not 0 <= test_split < 1 or val_split + test_split >= 1:
        raise DataError(
            f"--val-split {val_split} and --test-split {test_split} must leave room for training"
        )
    found = _discover(Path(data).expanduser(), task, targets)
    root, entries, skipped = found.root, found.entries, found.skipped
    if found.targets is not None:
        names = found.targets.columns
        if not entries:
            raise DataError(f"{data}: no image in the catalog has a usable target and a file")
    else:
        names = tuple(labels) if labels else tuple(sorted({label for _, label, _ in entries}))
        _check_names(data, entries, names, given=labels is not None)
    image_set = _checked_set(
        data, root, entries, skipped, names, bands, channels, max_pixels, workers, progress,
        split_of=lambda relpath, split: all_in or split or stable_split(relpath, val_split, test_split),
        values=found.values, targets=found.targets,
    )  # fmt: skip
    if found.targets is not None:
        _check_splits(data, image_set, require_training=all_in is None)
    else:
        _check_classes(data, image_set, require_training=all_in is None)
    return image_set


def _check_names(
    data: str | Path,
    entries: list[tuple[str, str, str | None]],
    names: tuple[str, ...],
    given: bool,
) -> None:
    """The classes found must be the run's (``given``), and a new set needs two of them."""
    unknown = sorted({label for _, label, _ in entries} - set(names))
    if unknown:
        raise DataError(
            f"{data}: classes {', '.join(unknown)} are not among the run's labels {', '.join(names)}"
        )
    if not entries:
        raise DataError(
            f"{data}: no images found (PNG, JPEG, TIFF or FITS, in a folder per class or a CSV catalog)"
        )
    if len(names) < 2 and not given:
        raise DataError(
            f"{data}: only one class ({', '.join(names)}); a classifier needs at least two"
        )


def scan_images(
    data: str | Path,
    *,
    bands: Sequence[Band] | None = None,
    channels: int | None = None,
    max_pixels: int = MAX_PIXELS,
    progress: bool = False,
) -> ImageSet:
    """Every usable image under a folder (at any depth) or in a CSV catalog, for embedding.

    Unlike a training set, no classes are needed: an image in a subfolder is labelled by
    its top folder, one directly in ``data`` or in a catalog without a 'label' column by
    "". Files that cannot be used are skipped with their reason, as for training.
    """
    path = Path(data).expanduser()
    if path.is_file() and path.suffix.lower() == ".csv":
        root, entries, skipped, _, _ = _from_catalog(path, label_required=False)
    elif path.is_dir():
        root, entries, skipped, _, _ = _from_any_folder(path)
    else:
        raise DataError(f"{data} is neither a folder of images nor a .csv catalog")
    if not entries:
        raise DataError(f"{data}: no images found (PNG, JPEG, TIFF or FITS)")
    names = tuple(sorted({label for _, label, _ in entries}))
    return _checked_set(
        data, root, entries, skipped, names, bands, channels, max_pixels, None, progress,
        split_of=lambda relpath, split: "test",
    )  # fmt: skip


def _checked_set(
    data: str | Path,
    root: Path,
    entries: list[tuple[str, str, str | None]],
    skipped: list[tuple[str, str]],
    names: tuple[str, ...],
    bands: Sequence[Band] | None,
    channels: int | None,
    max_pixels: int,
    workers: int | None,
    progress: bool,
    *,
    split_of: Callable[[str, str | None], str],
    values: dict[str, tuple[float, ...]] | None = None,
    targets: TargetColumns | None = None,
) -> ImageSet:
    """The entries whose files decode and whose bands fit, in their splits; the rest skipped."""
    checked = _check_files(root, entries, bands, max_pixels, workers, progress)
    readable = [(entry, result) for entry, result in zip(entries, checked, strict=True)]
    skipped += [(entry[0], result) for entry, result in readable if isinstance(result, str)]
    readable = [(entry, result) for entry, result in readable if not isinstance(result, str)]
    counts = Counter(bands_of for _, (_, bands_of) in readable)
    target = channels or _common_channels(data, counts)
    samples: list[Sample] = []
    for (relpath, label, split), (digest, bands_of) in readable:
        if not channels_fit(bands_of, target):
            skipped.append(
                (
                    relpath,
                    f"has {bands_of} bands where the others have {target}; pick bands with --bands",
                )
            )
            continue
        split = split_of(relpath, split)
        if values is None:
            samples.append(Sample(str(root / relpath), relpath, names.index(label), split, digest))
        else:
            samples.append(Sample(str(root / relpath), relpath, 0, split, digest, values[relpath]))
    image_set = ImageSet(str(root), names, samples, skipped, target, targets)
    if skipped:
        warnings.warn(
            f"{data}: skipped {len(skipped)} file(s) that could not be used, e.g. "
            f"{skipped[0][0]} ({skipped[0][1]}); the summary lists them all",
            DataWarning,
            stacklevel=3,
        )
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


def _discover(data: Path, task: str, targets: Sequence[str]) -> _Found:
    if data.is_file() and data.suffix.lower() == ".csv":
        return _from_catalog(data, task=task, targets=targets)
    if task != "classify":
        raise DataError(
            f"{data}: --task {task} reads its targets from a CSV catalog (path and target "
            "columns), not from folders"
        )
    if data.is_dir():
        return _from_folders(data)
    raise DataError(f"{data} is neither a folder of class folders nor a .csv catalog")


def _from_folders(root: Path) -> _Found:
    entries: list[tuple[str, str, str | None]] = []
    skipped: list[tuple[str, str]] = []
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for folder in classes:
        if not _utf8(folder.name):
            skipped.append((_printable(folder.name), NOT_UTF8 + " (a class folder)"))
            continue
        found = 0
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                if filename.startswith("."):
                    continue
                relpath = (Path(dirpath) / filename).relative_to(root).as_posix()
                if not _utf8(relpath):
                    skipped.append((_printable(relpath), NOT_UTF8))
                elif is_image_file(filename):
                    entries.append((relpath, folder.name, None))
                    found += 1
                else:
                    skipped.append((relpath, "not an image file (PNG, JPEG, TIFF or FITS)"))
        if not found:
            raise DataError(f"{root}: class folder '{folder.name}' holds no images")
    return _Found(root, entries, skipped)


def _from_any_folder(root: Path) -> _Found:
    """Image files at any depth, labelled by their top folder ("" in ``root`` itself)."""
    entries: list[tuple[str, str, str | None]] = []
    skipped: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(f for f in filenames if not f.startswith(".")):
            relpath = (Path(dirpath) / filename).relative_to(root).as_posix()
            if not _utf8(relpath):
                skipped.append((_printable(relpath), NOT_UTF8))
            elif is_image_file(filename):
                entries.append((relpath, relpath.split("/")[0] if "/" in relpath else "", None))
            elif not filename.lower().endswith(".csv"):
                skipped.append((relpath, "not an image file (PNG, JPEG, TIFF or FITS)"))
    return _Found(root, entries, skipped)


def _from_catalog(
    path: Path, *, label_required: bool = True, task: str = "classify", targets: Sequence[str] = ()
) -> _Found:
    """Rows of a CSV catalog; each file once, under one label.

    Paths inside the catalog's folder are kept relative to it (however they are written),
    so the split does not depend on where the folder is. A file listed twice under one
    label is used once; a file listed under two labels is left out. For a task with
    targets, the label is not needed and each row's target values are read and checked.
    """
    root = path.parent.resolve()
    rows: dict[str, tuple[str, str | None]] = {}
    labels_of: dict[str, set[str]] = {}
    repeated: list[int] = []
    reader = csv.DictReader(io.StringIO(_read_utf8(path), newline=""))
    header = [c.strip() for c in reader.fieldnames or []]
    columns = [c.lower() for c in header]
    label_required = label_required and task == "classify"
    if "path" not in columns or (label_required and "label" not in columns):
        wanted = "'path' and 'label' columns" if label_required else "a 'path' column"
        raise DataError(f"{path}: a catalog needs a header with {wanted} (got {columns})")
    table = [{_key(k): (v or "").strip() for k, v in row.items() if k} for row in reader]
    wanted = choose_columns(path, header, table, task, targets) if task != "classify" else None
    values: dict[str, tuple[float, ...]] = {}
    no_target: list[tuple[str, str]] = []
    for line, row in enumerate(table, start=2):
        written = row.get("path", "")
        label = row.get("label", "") if wanted is None else ""
        if not written or (label_required and not label):
            needed = "'path' and 'label' must both be" if label_required else "'path' must be"
            raise DataError(f"{path}, line {line}: {needed} filled in")
        split = row.get("split") or None
        if split is not None:
            if split.lower() not in _SPLIT_NAMES:
                raise DataError(f"{path}, line {line}: split '{split}' is not train, val or test")
            split = _SPLIT_NAMES[split.lower()]
        relpath = _relative_to(root, written)
        if wanted is not None:
            target = row_targets(path, line, row, wanted)
            if isinstance(target, str):
                no_target.append((relpath, target))
                continue
            values.setdefault(relpath, target)
        labels_of.setdefault(relpath, set()).add(label)
        if relpath in rows:
            if rows[relpath][0] == label:
                repeated.append(line)
            continue
        rows[relpath] = (label, split)
    entries: list[tuple[str, str, str | None]] = []
    skipped: list[tuple[str, str]] = no_target
    for relpath, (label, split) in rows.items():
        if len(labels_of[relpath]) > 1:
            both = ", ".join(sorted(labels_of[relpath]))
            skipped.append((relpath, f"listed under more than one label ({both}); fix the catalog"))
        elif not (root / relpath).is_file():
            skipped.append((relpath, "listed in the catalog but missing"))
        else:
            entries.append((relpath, label, split))
    if repeated:
        lines = ", ".join(map(str, repeated[:5])) + (", ..." if len(repeated) > 5 else "")
        warnings.warn(
            f"{path}: {len(repeated)} row(s) list a file again (lines {lines}); each file is used once",
            DataWarning,
            stacklevel=4,
        )
    return _Found(root, entries, skipped, wanted, values if wanted else None)


def _key(column: str) -> str:
    """A header cell as a row key: the reserved columns in any case, targets as written."""
    name = column.strip()
    return name.lower() if name.lower() in ("path", "label", "split") else name


def _text(target: tuple[float, ...]) -> str:
    return "".join(f"\t{value:g}" for value in target)


def _read_utf8(path: Path) -> str:
    """The catalog's text; another encoding is refused with the line where it shows."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: not UTF-8 (byte 0x{raw[exc.start]:02x}); save the catalog "
            "as UTF-8"
        ) from None


def _relative_to(root: Path, written: str) -> str:
    """A catalog path as a POSIX path relative to ``root`` if it is inside it, else absolute."""
    path = Path(os.path.normpath(root / Path(written).expanduser()))
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _format(path: str) -> str:
    """A file's format as its lower-case suffix ('png', 'jpg', 'fits', ...)."""
    name = path.lower()
    return "fits" if name.endswith(FITS_SUFFIXES) else Path(name).suffix.lstrip(".")


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(name: str) -> str:
    """A file name that is not valid UTF-8, with its odd bytes escaped."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _check_files(
    root: Path,
    entries: list[tuple[str, str, str | None]],
    bands: Sequence[Band] | None,
    max_pixels: int,
    workers: int | None,
    progress: bool,
) -> list[tuple[str, int] | str]:
    """Hash and decode every file; a failure becomes its reason, as a string."""

    def check(relpath: str) -> tuple[str, int] | str:
        path = root / relpath
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            image = read_image(path, bands, max_pixels=max_pixels)
        except ImageError as exc:
            return str(exc).removeprefix(f"{path}: ")
        except OSError as exc:
            return f"unreadable ({exc.strerror or exc})"
        except Exception as exc:  # a decoder may raise anything on a crafted file
            return f"unreadable ({type(exc).__name__}: {exc})"
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
    """The most common number of bands; grey images among colour ones are repeated."""
    if not counts:
        return 0
    common = counts.most_common(1)[0][0]
    if common != 1 and counts.get(1):
        warnings.warn(
            f"{data}: {counts[1]} single-band image(s) among {common}-band ones; each is "
            f"repeated to {common} bands",
            DataWarning,
            stacklevel=3,
        )
    return common


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


def _check_splits(data: str | Path, image_set: ImageSet, require_training: bool) -> None:
    """A set with catalog targets needs images to train on and to validate with."""
    for split in ("train", "val") if require_training else ():
        if not image_set.split(split):
            raise DataError(
                f"{data}: the {split} split is empty; add images or change --val-split/--test-split"
            )
