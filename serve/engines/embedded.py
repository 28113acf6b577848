"""zoo's embedded server as an engine: ``python -m zoo.serve.server`` with TF Serving's flags."""

from __future__ import annotations

import os
import sys

from zoo.serve.engines.base import Engine
from zoo.serve.options import PARENT_ENV, to_flags


class EmbeddedEngine(Engine):
    name = "embedded"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "zoo.serve.server", *to_flags(self.options)]

    def environment(self) -> dict[str, str]:
        """The server stops when this process is gone, even if it was killed."""
        return {**os.environ, PARENT_ENV: str(os.getpid())}
