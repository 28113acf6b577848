"""The run directory: everything a fine-tuning run leaves behind, written safely.

Files are written to a temporary name and renamed, so a crash never leaves half a file.
A run directory that already holds a run is never reused unless the caller resumes it
or forces it.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

from zoo.errors import ZooError

CONFIG = "config.json"


class RunDirError(ZooError):
    """The run directory cannot be used as asked."""


def prepare(out: str | Path, *, resume: bool, force: bool) -> Path:
    """Create the run directory, or check that it may be resumed or overwritten."""
    run = Path(out).expanduser()
    occupied = run.exists() and any(run.iterdir())
    if resume:
        if not (run / CONFIG).exists():
            raise RunDirError(
                f"{run} holds no run to resume (no {CONFIG}); drop --resume to start one"
            )
        return run
    if occupied and not force:
        raise RunDirError(
            f"{run} already holds files; use --resume to continue that run or --force to replace it"
        )
    if occupied:
        shutil.rmtree(run)
    run.mkdir(parents=True, exist_ok=True)
    return run


def write_json(path: Path, data: Any) -> Path:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(temporary, path)
    return path


def write_text(path: Path, text: str) -> Path:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
    return path


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def versions() -> dict[str, str]:
    """Library versions, recorded with every run."""
    import keras
    import numpy
    import tensorflow

    from zoo import __version__

    return {
        "zoo": __version__,
        "tensorflow": tensorflow.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
