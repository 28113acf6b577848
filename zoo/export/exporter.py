"""Writing one version: SavedModel, labels, warmup, manifest; verified, then put in place.

The version is assembled in a hidden folder inside ``BASE/NAME`` and renamed to its
number only after the clean-process check passed, so a server polling the folder never
sees half a version, and a failed or killed export leaves none. One exporter at a time
holds ``BASE/NAME`` (``zoo.locks``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from zoo.data.dataset import Sample
from zoo.data.pipeline import image_dataset
from zoo.errors import ExportError
from zoo.export.check import CheckReport, check_version
from zoo.export.manifest import IMAGE_FEATURE, LABELS_ASSET, WARMUP, check_name, write_manifest
from zoo.export.signatures import METHODS, ServingModule, float32_model
from zoo.export.warmup import write_warmup
from zoo.fs import atomic_directory, atomic_file, remove_temporaries
from zoo.locks import FolderLock
from zoo.progress import Progress
from zoo.train.distribute import precision
from zoo.train.rundir import Run, load_run
from zoo.versions import library_versions

#: Formats the bytes signature decodes in the graph exactly as training read them.
ENCODED_FORMATS = {"png", "jpg", "jpeg"}


def export_run(
    run: str | Path,
    base: str | Path,
    name: str,
    *,
    version: int | None = None,
    force: bool = False,
    top_k: int = 5,
    progress: bool = False,
    check: bool = True,
) -> tuple[Path, int, dict[str, Any], CheckReport | None]:
    """Export the finished run at ``run`` as ``base/name/<version>``; see ``zoo.export``."""
    check_name(name)
    if version is not None and version < 1:
        raise ExportError(f"--version must be a positive integer, got {version}")
    finished = load_run(run)
    folder = Path(base).expanduser() / name
    with FolderLock(folder), Progress("Exporting", 4, enabled=progress) as bar:
        if folder.is_dir():
            remove_temporaries(folder)  # what a killed export left; TF Serving ignored it
        number = version or next_version(folder)
        target = folder / str(number)
        if target.exists() and not force:
            raise ExportError(
                f"{target} already exists; pass --force to replace it, or leave --version out "
                f"for the next free one ({next_version(folder)})"
            )
        with atomic_directory(target, replace=force) as staging:
            manifest, inputs, expected = write_version(finished, staging, name, number, top_k, bar)
            report = (
                check_version(staging, inputs, expected, list(finished.labels)) if check else None
            )
            bar.update()
            if report is not None and not report.ok:
                raise ExportError(
                    f"the export of {finished.path} failed its check, so no version was "
                    f"written: {'; '.join(report.problems)}"
                )
    if report is not None:
        report.version = target
    return target, number, manifest, report


def next_version(folder: Path) -> int:
    """One more than the highest integer version in ``folder`` (1 for the first)."""
    numbers = (
        [int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()]
        if folder.is_dir()
        else []
    )
    return max(numbers, default=0) + 1


def write_version(
    run: Run, folder: Path, name: str, number: int, top_k: int, bar: Progress
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, dict[str, np.ndarray]]]:
    """Write the SavedModel, warmup and manifest into ``folder``; return the manifest and the
    check's inputs and the in-process model's outputs for them."""
    geometry = run.geometry
    files, pixels = _examples(run)
    formats = set(
        run.config["data"].get("formats") or {p.suffix.lower().lstrip(".") for p in files}
    )
    encoded = geometry.channels in (1, 3) and formats <= ENCODED_FORMATS and not geometry.bands
    with precision(False), tempfile.TemporaryDirectory() as scratch:
        labels_file = Path(scratch) / LABELS_ASSET
        labels_file.write_text("".join(f"{label}\n" for label in run.labels))
        task = run.task
        settings = {"top_k": top_k, **task.export_settings(run.metrics)}
        module = ServingModule(float32_model(run.model), task, settings, labels_file, geometry)
        signatures = module.signatures(encoded)
        tf.saved_model.save(module, str(folder), signatures=signatures)
    bar.update()
    for signature in signatures.keys() & METHODS.keys():
        _set_method(folder / "saved_model.pb", signature, METHODS[signature])
    blobs = [path.read_bytes() for path in files] if encoded else []
    write_warmup(
        folder / WARMUP, model_name=name, signatures=list(signatures), encoded=blobs, pixels=pixels
    )
    bar.update()
    inputs = _inputs(list(signatures), blobs, pixels)
    expected = {
        signature: {k: _plain(v) for k, v in signatures[signature](**arguments).items()}
        for signature, arguments in inputs.items()
    }
    manifest = _manifest(run, name, number, signatures, encoded)
    write_manifest(folder, manifest)
    bar.update()
    return manifest, inputs, expected


def _examples(run: Run) -> tuple[list[Path], np.ndarray]:
    """Validation images the run named, as files and as the pixels training read from them."""
    root = Path(run.config["data"]["root"])
    named = run.config.get("examples")
    if named is None:  # a run from before zoo named them: find them again
        from zoo.data.dataset import load_image_set

        settings = run.config["settings"]
        images = load_image_set(
            settings["data"], val_split=settings["val_split"], test_split=settings["test_split"]
        )
        named = [s.relpath for s in images.split("val")[:4]]
    files = [root / relpath for relpath in named]
    missing = [str(path) for path in files if not path.is_file()]
    if not files or missing:
        raise ExportError(
            "the run's validation images are needed for warmup requests and the export's "
            f"check, and these cannot be read: {', '.join(missing) or 'none named'}"
        )
    samples = [Sample(str(path), path.name, 0, "val", "") for path in files]
    batches = image_dataset(samples, run.geometry, batch_size=len(samples), labels=False)
    return files, np.concatenate([batch.numpy() for batch in batches])


def _inputs(
    signatures: list[str], blobs: list[bytes], pixels: np.ndarray
) -> dict[str, dict[str, Any]]:
    inputs: dict[str, dict[str, Any]] = {}
    for signature in signatures:
        if signature in METHODS:
            inputs[signature] = {"inputs": [_example(blob) for blob in blobs]}
        elif signature == "serving_default" and blobs:
            inputs[signature] = {"images": blobs}
        else:
            inputs[signature] = {"images": pixels}
    return inputs


def _example(blob: bytes) -> bytes:
    feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[blob]))
    return tf.train.Example(
        features=tf.train.Features(feature={IMAGE_FEATURE: feature})
    ).SerializeToString()


def _plain(value: Any) -> np.ndarray:
    array = value.numpy()
    return np.char.decode(array.astype(bytes), "utf-8") if array.dtype == object else array


def _set_method(path: Path, signature: str, method: str) -> None:
    """Set a signature's method name, which tf.saved_model.save always writes as predict."""
    model = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    for graph in model.meta_graphs:
        graph.signature_def[signature].method_name = method
    with atomic_file(path) as partial:
        partial.write_bytes(model.SerializeToString())


def _manifest(
    run: Run, name: str, number: int, signatures: dict[str, Any], encoded: bool
) -> dict[str, Any]:
    config, geometry = run.config, run.geometry
    return {
        "name": name,
        "version": number,
        "labels": list(run.labels),
        "task": run.task.to_dict(),
        "input": {
            "size": list(geometry.size),
            "channels": geometry.channels,
            "bands": list(geometry.bands) if geometry.bands else None,
            "encoded_images": sorted(ENCODED_FORMATS) if encoded else [],
            "pixels": "float32 values as the files hold them (0-255 for 8-bit), before preprocessing",
            "classify_feature": IMAGE_FEATURE if encoded else None,
        },
        "signatures": {key: _describe(function, key) for key, function in signatures.items()},
        "backbone": config["backbone"],
        "weights": {"source": config.get("weights"), "sha256": config.get("weights_sha256")},
        "data": {"root": config["data"]["root"], "split_digests": config["data"]["split_digests"]},
        "metrics": run.metrics,
        "run": str(run.path.resolve()),
        "versions": {**library_versions(), "trained_with": config["versions"]},
    }


def _describe(concrete: Any, key: str) -> dict[str, Any]:
    positional, named = concrete.structured_input_signature
    arguments = {spec.name: spec for spec in positional} | named
    return {
        "method": METHODS.get(key, "tensorflow/serving/predict"),
        "inputs": {name: _tensor(spec) for name, spec in arguments.items()},
        "outputs": {name: _tensor(spec) for name, spec in concrete.structured_outputs.items()},
    }


def _tensor(spec: Any) -> dict[str, Any]:
    return {"dtype": spec.dtype.name, "shape": [-1 if d is None else int(d) for d in spec.shape]}
