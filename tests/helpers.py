"""Helpers the tests import: installing small distributions, running the zoo script."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ZOO_SCRIPT = Path(sys.executable).with_name("zoo")


def write_distribution(
    site: Path, name: str, entry_points: dict[str, str], modules: dict[str, str]
) -> Path:
    """Install a minimal distribution into ``site`` the way pip lays one out.

    ``entry_points`` maps plugin names to modules in the ``zoo`` group; ``modules`` maps
    module file names to their source.
    """
    site.mkdir(parents=True, exist_ok=True)
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[zoo]\n{lines}\n")
    for filename, source in modules.items():
        (site / filename).write_text(textwrap.dedent(source))
    return site


def run_zoo(*args: str, pythonpath: Path | None = None, env: dict[str, str] | None = None):
    """Run the installed ``zoo`` console script in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    if pythonpath is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(pythonpath), full_env.get("PYTHONPATH", "")) if p
        )
    return subprocess.run(
        [str(ZOO_SCRIPT), *args], capture_output=True, text=True, env=full_env, timeout=120
    )
