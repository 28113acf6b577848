"""``zoo predict``'s work: files to requests, requests to labels or values.

PNG and JPEG files go as their bytes to a signature that takes encoded images; other
files (FITS, or any file for a model that takes pixels) are read as training read them
(``zoo.data.images``, ``zoo.data.conform``) and sent as float pixels.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from zoo.data.conform import conform
from zoo.data.images import ImageGeometry, read_image
from zoo.errors import ConfigError, ZooError
from zoo.serve.client import ServingClient

ENCODED = (".png", ".jpg", ".jpeg")


def predict_files(
    client: ServingClient,
    files: Sequence[Path],
    model: str,
    *,
    signature: str | None = None,
    version: int | None = None,
    label: str | None = None,
    top_k: int = 3,
    bands: str | None = None,
) -> list[dict[str, Any]]:
    """One result per file: its top labels with scores (classes), its labels (multi-label)
    or its values (regression, vote fractions), and the version that answered."""
    signatures = client.metadata(model, version)
    chosen = signature or _default_signature(signatures, files)
    if chosen not in signatures:
        raise ConfigError(
            f"model '{model}' has no signature '{chosen}' (it has {', '.join(sorted(signatures))})"
        )
    (name, info), *others = signatures[chosen].inputs.items()
    if others:
        raise ConfigError(
            f"signature '{chosen}' takes {len(others) + 1} inputs; zoo predict sends one image"
        )
    takes_bytes = info.dtype == tf.string.as_datatype_enum
    results = []
    for path in files:
        if takes_bytes:
            if path.suffix.lower() not in ENCODED:
                raise ConfigError(
                    f"{path}: signature '{chosen}' takes PNG or JPEG bytes; use --signature predict_images"
                )
            value: Any = [path.read_bytes()]
        else:
            value = _pixels(path, info, bands)[None]
        outputs = client.predict(
            model, {name: value}, signature=chosen, version=version, label=label
        )
        results.append(_result(path, outputs, client.last_spec.version.value, top_k))
    return results


def wait_for_model(client: ServingClient, model: str, version: int | None, seconds: float) -> None:
    """Until ``model`` (``version``, if given) is AVAILABLE on the server, for scripts that
    start a server and query it; an error after ``seconds``."""
    import grpc

    deadline = time.monotonic() + seconds
    last = "no answer"
    while True:
        try:
            states = client.status(model, version)
            if "AVAILABLE" in states.values():
                return
            last = ", ".join(f"version {v} {s}" for v, s in sorted(states.items()))
        except grpc.RpcError as exc:
            last = f"{exc.code().name}: {exc.details()}"
        if time.monotonic() > deadline:
            wanted = f"model '{model}'" + (f" version {version}" if version else "")
            raise ZooError(f"{wanted} was not available within {seconds:g} s ({last})")
        time.sleep(0.5)


def _default_signature(signatures: dict[str, Any], files: Sequence[Path]) -> str:
    """serving_default, unless it takes bytes and some file is not PNG or JPEG."""
    default = signatures.get("serving_default")
    if default is None:
        return next(iter(sorted(signatures)))
    takes_bytes = any(i.dtype == tf.string.as_datatype_enum for i in default.inputs.values())
    if (
        takes_bytes
        and any(p.suffix.lower() not in ENCODED for p in files)
        and "predict_images" in signatures
    ):
        return "predict_images"
    return "serving_default"


def _pixels(path: Path, info: Any, bands: str | None) -> np.ndarray:
    dims = [d.size for d in info.tensor_shape.dim]
    if len(dims) != 4 or min(dims[1:]) < 1:
        raise ConfigError(
            f"the signature's input has shape {dims}; zoo predict sends [1, H, W, C] images"
        )
    chosen = tuple(b.strip() for b in bands.split(",")) if bands else None
    geometry = ImageGeometry((dims[1], dims[2]), dims[3], chosen)
    return conform(read_image(path, chosen), geometry).numpy()


#: Outputs that repeat the named ones, or that a person does not read (zoo.tasks).
_NOT_SHOWN = {"features", "predictions", "fractions", "concentrations", "top_indices"}


def _result(path: Path, outputs: dict[str, np.ndarray], version: int, top_k: int) -> dict[str, Any]:
    probabilities = outputs.get("probabilities")
    if "predicted" in outputs and "labels" in outputs:  # multi-label
        names = [b.decode() for b in outputs["labels"][0]]
        order = np.argsort(probabilities[0])[::-1][:top_k]
        return {
            "file": str(path),
            "version": int(version),
            "labels": [n for n, on in zip(names, outputs["predicted"][0], strict=True) if on],
            "top": [(names[i], float(probabilities[0][i])) for i in order],
            "probabilities": probabilities[0].tolist(),
        }
    if probabilities is None:  # values: regression targets or vote fractions per question
        values = {k: outputs[k][0].tolist() for k in sorted(outputs) if k not in _NOT_SHOWN}
        return {"file": str(path), "version": int(version), "values": values}
    if "top_labels" in outputs:
        labels = [b.decode() for b in outputs["top_labels"][0][:top_k]]
        scores = [float(s) for s in outputs["top_scores"][0][:top_k]]
    else:
        order = np.argsort(probabilities[0])[::-1][:top_k]
        labels, scores = [str(i) for i in order], [float(probabilities[0][i]) for i in order]
    return {
        "file": str(path),
        "version": int(version),
        "top": list(zip(labels, scores, strict=True)),
        "probabilities": probabilities[0].tolist() if probabilities is not None else None,
    }
