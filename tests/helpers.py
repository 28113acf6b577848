"""Helpers the tests import: installing small distributions, running the zoo script."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
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
        [str(ZOO_SCRIPT), *args], capture_output=True, text=True, env=full_env, timeout=900
    )


@dataclass
class Served:
    """What the loopback server serves and what it saw; tests flip its modes."""

    root: Path
    base_url: str = ""
    requests: list[dict[str, str]] = field(default_factory=list)
    cut_after: int | None = None
    ignore_range: bool = False

    def serve(self, relative: str, data: bytes) -> str:
        """Publish ``data`` at ``relative`` and return its URL."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return f"{self.base_url}/{relative}"


class RangeHandler(BaseHTTPRequestHandler):
    """Serves files under ``Served.root``, honouring ``Range: bytes=N-``."""

    def do_GET(self) -> None:
        served: Served = self.server.served  # type: ignore[attr-defined]
        served.requests.append({"path": self.path, **dict(self.headers)})
        path = served.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = self._range_start()
        if start is None or served.ignore_range:
            start = 0
            self.send_response(200)
        else:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if served.cut_after is not None:
            body = body[: served.cut_after]
            self.close_connection = True
        self.wfile.write(body)

    def _range_start(self) -> int | None:
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        return int(match.group(1)) if match else None

    def log_message(self, format: str, *args: object) -> None:
        pass
