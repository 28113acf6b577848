"""Export for TF Serving: a fine-tuning run becomes ``BASE/NAME/<version>/``, a SavedModel
that TensorFlow Serving's C++ server loads as is.

Inside a version: ``saved_model.pb`` and ``variables/`` (a float32 graph, preprocessing
included; ``zoo.export.signatures`` lists the signatures), ``assets/labels.txt``,
``assets.extra/tf_serving_warmup_requests`` (``zoo.export.warmup``) and ``zoo.json``
(``zoo.export.manifest``). Every export is verified in a process without zoo
(``zoo.export.check``) before it is put in place (``zoo.export.exporter``).

Importing this package is cheap; TensorFlow loads when a run is exported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Export:
    """An exported version: where it is, its number, its manifest and its check."""

    path: Path
    version: int
    manifest: dict[str, Any]
    check: Any  # zoo.export.check.CheckReport; None when the check was skipped


def export(
    run: str | Path,
    base: str | Path,
    name: str,
    *,
    version: int | None = None,
    force: bool = False,
    top_k: int = 5,
    progress: bool = False,
    check: bool = True,
) -> Export:
    """Export the finished run at ``run`` as ``base/name/<version>`` for TF Serving.

    ``version`` defaults to the next free integer; an existing version is replaced only
    with ``force``. ``top_k`` labels are returned per image. The export is verified in a
    clean process and refused (nothing written) when it fails; ``check=False`` skips that
    verification (its ten seconds), for callers that verify the version themselves.
    """
    from zoo.export.exporter import export_run

    path, number, manifest, check = export_run(
        run, base, name, version=version, force=force, top_k=top_k, progress=progress, check=check
    )
    return Export(path, number, manifest, check)


def check(version: str | Path) -> Any:
    """Verify an exported version in a clean process, from its own warmup requests."""
    from zoo.export.check import check_version, warmup_inputs
    from zoo.export.manifest import read_manifest

    manifest = read_manifest(version)
    return check_version(Path(version), warmup_inputs(Path(version)), labels=manifest["labels"])
